"""Pure parts of the logs, leaks, resources, clock and certs checks. Outputs marked as captured
come from real test hosts (tests/unit/data/doctor/, written by the integration run's
commands); the rest are shaped like them to reach the edges."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ferryman.checks import certs, clock, leaks, logs, resources
from ferryman.checks.commands import split_files
from ferryman.checks.findings import Finding, Status, warn
from ferryman.checks.runner import FixRecord
from ferryman.config import Config
from ferryman.docker.inspect import parse_containers

DATA = Path(__file__).parent / "data" / "doctor"


# --- logs ----------------------------------------------------------------------------------

def test_daemon_default_from_flags_and_daemon_json() -> None:
    facts = logs.parse_dockerd_facts(
        "now 1764553200\nmtime 1764553100\ndockerd_elapsed 3600\n"
        "dockerd_args dockerd --host=unix:///var/run/docker.sock --dns 127.0.0.1 \n")
    assert (facts.now, facts.mtime, facts.elapsed) == (1764553200, 1764553100, 3600)
    assert facts.started_before_change  # started 1764549600, the file changed after
    assert logs.flag_defaults(facts.args) == (None, {})
    assert logs.flag_defaults(["dockerd", "--log-opt", "max-size=5m", "--log-driver=local"]) \
        == ("local", {"max-size": "5m"})
    # No daemon.json, nothing on the command line: json-file that grows forever.
    driver, opts = logs.daemon_default({}, facts.args, "json-file")
    assert (driver, opts) == ("json-file", {}) and logs.rotated(driver, opts) is False
    doc = {"log-driver": "json-file", "log-opts": {"max-size": "50m"}}
    assert logs.rotated(*logs.daemon_default(doc, [], "json-file")) is True
    assert logs.rotated("local", {}) is True  # the local driver rotates by itself
    assert logs.rotated("journald", {}) is None  # no file on the host
    assert logs.rotated("json-file", {"max-size": "-1"}) is False


def test_merge_keeps_what_the_operator_set() -> None:
    doc = logs.parse_daemon_json('{"live-restore": true, "log-opts": {"max-size": "50m"}}')
    new = logs.merged(doc)
    assert new == {"live-restore": True, "log-driver": "json-file",
                   "log-opts": {"max-size": "50m", "max-file": "3"}}
    assert logs.merged({}) == {"log-driver": "json-file",
                               "log-opts": {"max-size": "10m", "max-file": "3"}}
    assert logs.parse_daemon_json("  ") == {}
    for bad in ("[1]", "{nope"):
        try:
            logs.parse_daemon_json(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_log_sizes_add_rotated_files() -> None:
    a = "/var/lib/docker/containers/aa/aa-json.log"
    b = "/var/lib/docker/containers/bb/local-logs/container.log"
    out = (f"1048576 {a}\n10485760 {a}.1\n300 {b}\n200 {b}.1.gz\nnoise\n")
    assert logs.parse_sizes(out, [a, b, "/x"]) == {a: 11534336, b: 500, "/x": 0}


# --- leaks ---------------------------------------------------------------------------------

def test_other_environments_addresses(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    # Both demo environments' hosts are 127.0.0.1: a loopback address names nobody.
    assert leaks.targets(cfg, "test") == {"10.0.0.57": "prod"}
    assert leaks.targets(cfg, "prod") == {"10.0.0.58": "test"}
    assert leaks.is_loopback("127.0.0.1") and leaks.is_loopback("localhost")
    assert not leaks.is_loopback("10.0.0.57")


def test_names_and_tokens_in_values() -> None:
    assert leaks.names_in("redis://:pw@cache.prod.test:6379/0") == {"cache.prod.test"}
    assert leaks.names_in("db.prod.test", key="DB_HOST") == {"db.prod.test"}
    assert leaks.names_in("3.2.1", key="VERSION") == set()
    assert leaks.names_in('  "host": "mysql-prod",') == {"mysql-prod"}
    assert leaks.names_in("redis:\n  host: cache.prod.test") == {"cache.prod.test"}
    # A whole token only: 10.0.0.5 is not 10.0.0.57, 110.0.0.57 neither.
    assert leaks.literal("DB=10.0.0.57:3306", ["10.0.0.57"]) == ["10.0.0.57"]
    assert leaks.literal("DB=10.0.0.5", ["10.0.0.57"]) == []
    assert leaks.literal("DB=110.0.0.57", ["10.0.0.57"]) == []
    assert leaks.literal("at 10.0.0.57.", ["10.0.0.57"]) == ["10.0.0.57"]
    assert leaks.mask("URL=mysql://shop:s3cret@10.0.0.57/shop") == \
        "URL=mysql://shop:***@10.0.0.57/shop"
    assert leaks.mask("DB_PASSWORD=10.0.0.57", "DB_PASSWORD") == "DB_PASSWORD=***"


def test_kind_from_port_key_or_scheme() -> None:
    assert leaks.kind_of("DB=10.0.0.57:3306", "10.0.0.57") == "MySQL, port 3306"
    assert leaks.kind_of("REDIS_HOST=10.0.0.57", "10.0.0.57", "REDIS_HOST") == "Redis"
    assert leaks.kind_of("u=redis://cache.prod.test/0", "cache.prod.test") == "Redis"
    assert leaks.kind_of("X=10.0.0.57", "10.0.0.57", "X") is None


def test_hits_in_env_and_files() -> None:
    addr = {"10.0.0.57": "prod"}
    resolved = leaks.parse_resolved("== cache.prod.test\n10.0.0.57\n== nowhere.test\n")
    assert resolved == {"cache.prod.test": {"10.0.0.57"}, "nowhere.test": set()}
    addr_all = {**addr}
    own = {"prod": "10.0.0.57", "test": "10.0.0.58"}
    (direct,) = leaks.find_hits("env", "shop-backend", "DB_HOST", None, "DB_HOST=10.0.0.57",
                                addr_all, resolved, own)
    assert (direct.subject, direct.env, direct.via) == ("shop-backend DB_HOST", "prod", None)
    (named,) = leaks.find_hits("env", "shop-backend", "REDIS_URL", None,
                               "REDIS_URL=redis://cache.prod.test:6379/0", addr_all,
                               resolved, own)
    assert (named.address, named.via, named.kind) == ("cache.prod.test", "10.0.0.57",
                                                      "Redis, port 6379")
    assert "resolves to 10.0.0.57, prod's address" in leaks.summary(named, "test")
    resolved["db.prod.test"] = {"10.0.0.57"}
    (bare,) = leaks.find_hits("env", "shop-backend", "DB_HOST", None, "DB_HOST=db.prod.test",
                              addr_all, resolved, own)
    assert (bare.address, bare.via, bare.kind) == ("db.prod.test", "10.0.0.57", "database")
    text = ('{\n  "base_url": "http://10.0.0.57:9380",\n  "redis": {"host": "10.0.0.57"}\n}')
    hits = leaks.file_hits("/opt/shop/app_config.json", text, addr_all, resolved, own,
                           {"base_url"})
    assert [(h.subject, h.key) for h in hits] == [("/opt/shop/app_config.json:3", "host")]
    (yml,) = leaks.file_hits("/conf/settings.yaml", "redis:\n  host: cache.prod.test\n",
                             addr_all, resolved, own, set())
    assert (yml.subject, yml.via, yml.text) == ("/conf/settings.yaml:2", "10.0.0.57",
                                                "host: cache.prod.test")
    assert leaks.file_hits("/bin.json", "a\0b 10.0.0.57", addr_all, resolved, own, set()) == []


def test_scan_roots_skip_system_paths() -> None:
    inspect = json.dumps([{
        "Name": "/api", "Id": "a" * 64, "State": {}, "Config": {"Labels": {
            "com.docker.compose.project": "shop", "com.docker.compose.service": "api",
            "com.docker.compose.project.working_dir": "/opt/shop",
            "com.docker.compose.project.config_files": "/opt/shop/docker-compose.yml"}},
        "Mounts": [{"Type": "bind", "Source": "/opt/shop/app_config.json"},
                   {"Type": "bind", "Source": "/var/run/docker.sock"},
                   {"Type": "bind", "Source": "/etc"},
                   {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data"},
                   {"Type": "bind", "Source": "/srv/conf/"}]}])
    facts = parse_containers(inspect)
    assert leaks.scan_roots(facts.values(), ["/etc/app.json"]) == [
        "/etc/app.json", "/opt/shop", "/opt/shop/app_config.json", "/srv/conf"]
    listing = "\036/opt/shop/.env\nA=1\nB=2\n\036/srv/conf/x.yml\nredis: {}\n\n"
    assert split_files(listing) == {"/opt/shop/.env": "A=1\nB=2", "/srv/conf/x.yml":
                                    "redis: {}"}


# --- resources -----------------------------------------------------------------------------

def test_stats_meminfo_and_sizes() -> None:
    assert resources.parse_size("1.5MiB") == 1572864
    assert resources.parse_size("7.7GiB") == int(7.7 * (1 << 30))
    assert resources.parse_size("512B") == 512 and resources.parse_size("--") is None
    st = resources.parse_stats("hog\tabc123\t15.9MiB / 16MiB\t99.38%\t0.00%\n"
                               "web\tdef456\t1.2MiB / 7.7GiB\t0.02%\t0.01%\n")
    assert st["hog"].used == int(15.9 * (1 << 20)) and st["hog"].ceiling == 16 << 20
    assert st["hog"].percent == 99.38 and st["web"].cpu == "0.01%"
    info = resources.parse_meminfo("MemTotal:        8000000 kB\nMemFree:  100000 kB\n"
                                   "MemAvailable:     300000 kB\nSwapTotal: 0 kB\n"
                                   "SwapFree: 0 kB\nHugePages_Total: 0\n")
    assert info["MemAvailable"] == 300000 * 1024 and info["HugePages_Total"] == 0
    level, text, data = resources.host_memory(info)
    assert level == "WARN" and "swap off" in text and "OOM killer" in text
    assert data["swap_total"] == 0
    roomy = {**info, "MemAvailable": 6000000 * 1024}
    assert resources.host_memory(roomy)[0] == "OK"


def test_kernel_oom_lines_name_the_container() -> None:
    cid = "f" * 64
    out = ("source dmesg\n"
           "[Tue Dec  1 01:50:00 2026] dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)\n"
           "[Tue Dec  1 01:50:00 2026] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
           f"cpuset={cid},mems_allowed=0,oom_memcg=/docker/{cid},task_memcg=/docker/{cid},"
           "task=dd,pid=4242,uid=0\n"
           "[Tue Dec  1 01:50:00 2026] Memory cgroup out of memory: Killed process 4242 (dd) "
           "total-vm:67000kB, anon-rss:16000kB\n"
           "[Tue Dec  1 01:51:00 2026] Out of memory: Killed process 77 (mysqld)\n")
    source, events = resources.parse_oom(out)
    assert source == "dmesg" and len(events) == 2
    assert events[0].ids == [cid] and events[0].task == "dd" and events[0].pid == "4242"
    assert "Killed process 4242 (dd)" in events[0].line
    assert events[0].brief == (f"[Tue Dec  1 01:50:00 2026] oom-kill: task=dd pid=4242 "
                               f"memcg=/docker/{cid}\n[Tue Dec  1 01:50:00 2026] Memory cgroup "
                               "out of memory: Killed process 4242 (dd) total-vm:67000kB, "
                               "anon-rss:16000kB")
    assert events[1].ids == [] and events[1].task == "mysqld"
    assert resources.parse_oom("unreadable\n") == (None, [])


def test_container_verdicts() -> None:
    def one(state: dict, memory: int = 0, restarts: int = 0) -> resources.ContainerFacts:
        return parse_containers(json.dumps([{
            "Name": "/hog", "Id": "f" * 64, "RestartCount": restarts, "State": state,
            "HostConfig": {"Memory": memory}, "Config": {}}]))["hog"]

    oom = one({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, memory=16 << 20)
    level, text, kind = resources.verdict(oom, None, [], 8 << 30)
    assert (level, kind) == ("FAIL", "oom")
    assert "exit code 137: SIGKILL" in text and "limit 16.0 MB" in text
    near = one({"Status": "running"}, memory=16 << 20)
    st = resources.Stats("hog", "f", 15 << 20, 16 << 20, 93.7, "0%")
    assert resources.verdict(near, st, [], 8 << 30)[2] == "near"
    loop = one({"Status": "restarting", "ExitCode": 3}, restarts=5)
    level, text, kind = resources.verdict(loop, None, [], 8 << 30)
    assert (level, kind) == ("FAIL", "restart-loop") and "exit code 3" in text
    assert resources.exit_meaning(139).startswith("SIGSEGV")
    assert resources.exit_meaning(130) == "killed by signal 2"


# --- clock ---------------------------------------------------------------------------------

def test_skew_with_the_round_trip_accounted_for() -> None:
    assert clock.parse_date("1764553200.123456789\n") == (1764553200.123456789, 0.0)
    assert clock.parse_date("1764553200.N\n") == (1764553200.0, 1.0)  # busybox date
    assert clock.parse_date("garbage") == (None, 0.0)
    # Sent at 1000.0, answered 0.2 s later: the host read its clock around 1000.1.
    samples = [clock.Sample(1000.0, 0.2, 1300.1), clock.Sample(2000.0, 0.5, 2299.9),
               clock.Sample(3000.0, 0.1, None)]
    m = clock.measure(samples)
    assert m == clock.Measure(300.0, 0.1, 0.2)
    assert clock.judge(m.certain_skew()) == "FAIL"
    assert clock.judge(clock.Measure(0.4, 0.05, 0.1).certain_skew()) == "OK"
    # 1.08 s off but 0.1 s uncertain: at least 0.98 s apart, not yet a WARN.
    assert clock.judge(clock.Measure(1.08, 0.1, 0.2).certain_skew()) == "OK"
    assert clock.judge(clock.Measure(-2.5, 0.1, 0.2).certain_skew()) == "WARN"
    assert clock.measure([clock.Sample(0, 0.1, None)]) is None
    whole = clock.measure([clock.Sample(100.0, 0.2, 100.0, 1.0)])
    assert whole == clock.Measure(0.4, 0.6, 0.2)


def test_hosts_against_each_other() -> None:
    hosts = [("test", "test-1", clock.Measure(0.01, 0.002, 0.004)),
             ("prod", "prod-1", clock.Measure(300.0, 0.003, 0.006)),
             ("prod", "prod-2", clock.Measure(-0.02, 0.002, 0.004))]
    pairs = clock.between(hosts)
    # prod-1 is the one far from this machine: both of its pairs land on it; of the others,
    # the one further off (prod-2) gets theirs.
    assert [(on, status) for on, status, _, _ in pairs] == [(1, "FAIL"), (2, "OK"),
                                                            (1, "FAIL")]
    assert pairs[0][2] == "299.990s ahead of test/test-1 (±0.005s)"
    assert pairs[1][3]["difference"] == -0.03 and pairs[1][3]["other"] == "test/test-1"


# --- certs ---------------------------------------------------------------------------------

def make_cert(names: list[str], days: float, issuer: x509.Name | None = None
              ) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False).sign(key, hashes.SHA256()))


def test_certificate_judged_on_expiry_name_and_chain() -> None:
    c = certs.facts(make_cert(["shop.example.test"], 5))
    assert c.self_signed and c.names == ["shop.example.test"]
    status, problems = certs.judge(c, "shop.example.test", "self-signed certificate")
    assert status == "FAIL"
    assert problems[0].startswith("expires in 4.9 days") or \
        problems[0].startswith("expires in 5.0 days")
    assert problems[1] == "chain: self-signed certificate: browsers refuse it"
    late = certs.facts(make_cert(["*.example.test"], 15, issuer=x509.Name(
        [x509.NameAttribute(x509.NameOID.COMMON_NAME, "Some CA")])))
    status, problems = certs.judge(late, "shop.example.test", None)
    assert status == "WARN" and "renewal is late" in problems[0] and len(problems) == 1
    status, problems = certs.judge(late, "other.test", "unable to get local issuer "
                                   "certificate")
    assert status == "FAIL" and "not other.test" in problems[1] and "fullchain" in problems[2]
    good = certs.facts(make_cert(["shop.example.test"], 80))
    assert certs.judge(good, "shop.example.test", None) == ("OK", [])
    assert certs.judge(good, "shop.example.test", None,
                       now=datetime.now(UTC) + timedelta(days=90))[0] == "FAIL"
    assert certs.name_matches("a.example.test", ["*.example.test"])
    assert not certs.name_matches("a.b.example.test", ["*.example.test"])
    assert not certs.name_matches("example.test", ["*.example.test"])


NGINX = """\
server {
    listen 80;
    server_name shop.example.test;
    return 301 https://$host$request_uri;
}
server {
    listen 443 ssl;   # TLS
    server_name shop.example.test www.shop.example.test;
    ssl_certificate /etc/ssl/shop/fullchain.pem;
    ssl_certificate_key /etc/ssl/shop/privkey.pem;
    location / { proxy_pass http://127.0.0.1:8080; }
}
"""


def test_nginx_server_blocks() -> None:
    blocks = certs.server_blocks("/etc/nginx/conf.d/shop.conf", NGINX)
    assert [(b.line, b.names, b.listen) for b in blocks] == [
        (1, ["shop.example.test"], ["80"]),
        (6, ["shop.example.test", "www.shop.example.test"], ["443 ssl"])]
    (tls,) = certs.serving(blocks, "shop.example.test", 443)
    assert (tls.certificate, tls.certificate_line) == ("/etc/ssl/shop/fullchain.pem", 9)
    assert certs.serving(blocks, "other.test", 443) == []
    assert certs.chain_problem("certificate has expired") is None


# --- fixes ---------------------------------------------------------------------------------

def test_a_warn_that_stays_is_not_proven() -> None:
    before = warn("logs", "daemon default", "grows without bound")
    rec = FixRecord(before, applied=True, rechecked={"logs": "WARN"})
    rec.after = [Finding("logs", Status.WARN, "daemon default", "grows without bound")]
    assert not rec.proven
    rec.after = [Finding("logs", Status.WARN, "daemon default", "not in force until dockerd "
                         "restarts")]
    assert rec.proven


# --- captured on real test hosts (tests/unit/capture_doctor.py) ----------------------------

@pytest.fixture(params=["bookworm", "trixie"])
def captured(request: pytest.FixtureRequest) -> dict:
    return json.loads((DATA / f"{request.param}.json").read_text())


def test_captured_logs(captured: dict) -> None:
    facts = parse_containers(captured["inspect"]["stdout"])
    chatty, quiet = facts["chatty"], facts["quiet"]
    log = chatty.raw["HostConfig"]["LogConfig"]
    assert log == {"Type": "json-file", "Config": {}}
    assert logs.rotated(log["Type"], log["Config"]) is False
    bounded = quiet.raw["HostConfig"]["LogConfig"]
    assert bounded["Config"] == {"max-size": "1m", "max-file": "2"}
    assert logs.rotated(bounded["Type"], bounded["Config"]) is True
    paths = [f.raw["LogPath"] for f in facts.values()]
    assert chatty.raw["LogPath"].endswith(f"{chatty.id}-json.log")
    sizes = logs.parse_sizes(captured["log_sizes"]["stdout"], paths)
    assert sizes[chatty.raw["LogPath"]] > 2000 * 50  # 2000 lines, as JSON records
    assert sizes[quiet.raw["LogPath"]] == 0
    # The test hosts' dockerd: no daemon.json, no --log-opt: json-file growing forever.
    dockerd = logs.parse_dockerd_facts(captured["dockerd_facts"]["stdout"])
    assert dockerd.args[:3] == ["dockerd", "--host=unix:///var/run/docker.sock", "--dns"]
    assert dockerd.elapsed is not None and dockerd.now is not None and dockerd.mtime is None
    info = json.loads(captured["docker_info"]["stdout"])
    default = logs.daemon_default({}, dockerd.args, info["LoggingDriver"])
    assert default == ("json-file", {}) and logs.rotated(*default) is False
    assert "a release carries no log flag today" in logs._container_fix(
        chatty, log).text
    assert "logging: {driver: json-file" in logs._container_fix(facts["shop-api"], log).text


def test_captured_memory_and_oom(captured: dict) -> None:
    facts = parse_containers(captured["inspect"]["stdout"])
    hog = facts["hog"]
    assert hog.oom_killed and hog.exit_code == 137
    assert hog.raw["HostConfig"]["Memory"] == 16 << 20
    source, events = resources.parse_oom(captured["kernel_oom"]["stdout"])
    assert source == "dmesg"
    kills = [e for e in events if hog.id in e.ids]
    assert len(kills) == 1 and kills[0].task == "busybox"
    assert "Killed process" in kills[0].line  # the two kernel lines, joined
    stats = resources.parse_stats(captured["stats"]["stdout"])
    assert "hog" not in stats  # stopped: docker stats lists running containers
    info = resources.parse_meminfo(captured["meminfo"]["stdout"])
    level, text, kind = resources.verdict(hog, None, kills, info["MemTotal"])
    assert (level, kind) == ("FAIL", "oom")
    assert text.startswith("killed for lack of memory (State.OOMKilled; 1 OOM kill(s)")
    web = stats["web"]
    assert web.used and web.ceiling == pytest.approx(info["MemTotal"], rel=0.01)
    level, text, kind = resources.verdict(facts["web"], web, [], info["MemTotal"])
    assert level == "OK" and "no limit (host: " in text
    assert resources.host_memory(info)[2]["total"] == info["MemTotal"]
    host, resolution = clock.parse_date(captured["clock"]["stdout"])
    assert host is not None and resolution == 0.0
    assert captured["time_sync"]["stdout"] == ""  # nothing keeps a test host's clock


def test_captured_leaks(captured: dict) -> None:
    facts = parse_containers(captured["test_inspect"]["stdout"])
    backend = facts["shop-backend"]
    resolved = leaks.parse_resolved(captured["resolve"]["stdout"])
    assert resolved == {"cache.prod.test": {"10.0.0.57"}, "nowhere.test": set()}
    addr = {"10.0.0.57": "prod"}
    own = {"prod": "10.0.0.57", "test": "10.0.0.58"}
    hits = [h for e in backend.raw["Config"]["Env"]
            for h in leaks.find_hits("env", backend.name, e.partition("=")[0], None, e, addr,
                                     resolved, own)]
    assert [(h.key, h.address, h.via) for h in hits] == [
        ("DB_HOST", "10.0.0.57", None), ("REDIS_URL", "cache.prod.test", "10.0.0.57")]
    assert leaks.scan_roots(facts.values(), []) == ["/opt/backend", "/opt/shop",
                                                    "/opt/shop/app_config.json"]
    files = split_files(captured["scan"]["stdout"])
    assert set(files) == {"/opt/backend/settings.yaml", "/opt/shop/app_config.json",
                          "/opt/shop/docker-compose.yml"}
    found = [h for path, text in files.items()
             for h in leaks.file_hits(path, text, addr, resolved, own, set())]
    assert [(h.subject, h.via) for h in found] == [("/opt/backend/settings.yaml:2",
                                                   "10.0.0.57")]


# --- commands are data -----------------------------------------------------------------------

def test_command_builders() -> None:
    from ferryman.checks import commands as cc

    assert cc.clock() == ["date", "+%s.%N"]
    assert cc.meminfo() == ["cat", "/proc/meminfo"]
    assert cc.container_stats() == [
        "docker", "stats", "--no-stream", "--format",
        "{{.Name}}\t{{.ID}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.CPUPerc}}"]
    assert cc.log_sizes(["/a", "/b"])[3:] == ["ferryman-log-sizes", "/a", "/b"]
    assert cc.scan_files(["/opt/x"])[3:] == ["ferryman-scan", "3", "65536", "200", "/opt/x"]
    assert cc.resolve_many(["db.prod"])[3:] == ["ferryman-resolve", "db.prod"]
    assert cc.dockerd_validate("/etc/docker/daemon.json")[3:] == [
        "ferryman-dockerd-validate", "/etc/docker/daemon.json"]
    assert cc.nginx_files("shop.test", ["/etc/nginx"])[3:] == [
        "ferryman-nginx-files", "shop.test", "/etc/nginx"]
    for argv in (cc.log_sizes(["/a"]), cc.scan_files(["/a"]), cc.kernel_oom(), cc.time_sync(),
                 cc.dockerd_facts(), cc.resolve_many(["a"])):
        assert argv[:2] == ["sh", "-c"]


def test_scan_and_sizes_scripts_take_odd_names_as_data(tmp_path: Path) -> None:
    import subprocess

    from ferryman.checks import commands as cc

    odd = tmp_path / "a b;$(touch pwned).json"
    odd.write_text('{"redis": {"host": "cache.prod.test"}}\n')
    (tmp_path / "big.json").write_text("x" * 300_000)  # data, not configuration
    (tmp_path / "notes.txt").write_text("not config-like\n")
    out = subprocess.run(cc.scan_files([str(tmp_path)]), capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout
    assert split_files(out) == {str(odd): '{"redis": {"host": "cache.prod.test"}}'}
    sizes = subprocess.run(cc.log_sizes([str(odd)]), capture_output=True, text=True,
                           cwd=tmp_path, check=True).stdout
    assert sizes == f"{odd.stat().st_size} {odd}\n"
    assert not (tmp_path / "pwned").exists()
