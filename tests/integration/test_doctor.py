"""`ferryman doctor` and `ferryman proxy-config` on real hosts, each fault created for real.

One TEST/PROD pair (the demo: `web` by docker run, `api` by docker-compose, PROD's base_url
naming TEST) serves the whole module; each test makes its fault on PROD and undoes it.

The commands run as an operator runs them, in a subprocess with the global `-c` option. Until
`doctor` and `proxy-config` are in ferryman's command table, this file is its own command
line: run as a script, it builds a Typer app with ferryman's global options and the two
commands (see the bottom of the file).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labenv import Run, evidence, ferryman, found

from ferryman.lab.demo import ADDRESSES, CONFIG_FILE, Demo, down, up

PREFIX = f"ferryman-pytest-doc-{uuid.uuid4().hex[:6]}"
CHECKS = {"host", "runmode", "containers", "resources", "logs", "networks", "firewall", "ports",
          "reach", "guards", "leaks", "disk", "clock", "certs"}
FIREWALLD = ("nft add table inet firewalld; "
             "nft add chain inet firewalld filter_FORWARD "
             "'{ type filter hook forward priority 0 ; }'; "
             "nft add rule inet firewalld filter_FORWARD reject with icmpx type host-unreachable")


def cli(config: Path, *args: str) -> Run:
    return ferryman(config, *args)


def doctor(d: Demo, *args: str, config: Path | None = None) -> tuple[Run, dict[str, Any]]:
    run = cli(config or d.config, "doctor", *args, "--json")
    assert run.code in (0, 1, 3), run.err
    return run, json.loads(run.out)


def sh(d: Demo, script: str, check: bool = True, role: str = "prod") -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def config_with(d: Demo, name: str, services: str = "", data: str = "") -> Path:
    """The demo's ferryman.yml with more services and a data section."""
    text = d.config.read_text().replace("services:\n", "services:\n" + services, 1) + data
    path = d.config.parent / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("doctor") / "demo"
    made = up(workdir, prefix=PREFIX)
    try:
        yield made
    finally:
        down(workdir, PREFIX)


def test_healthy_host_gives_no_fail(demo: Demo) -> None:
    run, report = doctor(demo, "test")
    assert run.code == 0, run.out
    assert report["ok"] is True and report["summary"]["FAIL"] == 0
    assert {f["check"] for f in report["findings"]} == CHECKS
    assert all(f["env"] == "test" and f["host"] == "test-1" for f in report["findings"])
    engine = sh(demo, "docker version --format '{{.Server.Version}}'", role="test").strip()
    assert found(report, "host", "docker")[0]["data"]["version"] == engine
    assert found(report, "host", "architecture", "OK")[0]["data"]["arch"] == "amd64"
    modes = {f["subject"]: f["data"]["release"] for f in found(report, "runmode")}
    assert modes == {"web": "run", "api": "compose"}
    assert found(report, "guards", status="OK")[0]["data"]["value"] == "http://10.0.0.58:9380"
    # Nothing stands between the app and the outside on the host: the security group is left.
    for f in found(report, "reach"):
        assert f["status"] == "OK" and "security group" in f["summary"]

    human = cli(demo.config, "doctor", "test")
    assert human.code == 0, human.err
    assert "test / test-1" in human.out and "0 FAIL" in human.out
    assert "compose mode: project shop" in human.out


def test_firewalld_leftover_breaks_containers_and_fix_mends_it(demo: Demo) -> None:
    sh(demo, "docker run -d --name shop-db --network shop_default ferryman-app:v1")
    ip = sh(demo, "docker inspect -f "
            "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' shop-db").strip()
    try:
        sh(demo, FIREWALLD)
        # The fault is real: shop-api cannot reach its peer, the host itself can.
        cut = sh(demo, f"docker exec shop-api nc -w 2 {ip} 8080 </dev/null 2>&1", check=False)
        assert "No route to host" in cut

        run, report = doctor(demo, "prod", "--check", "firewall", "--check", "networks")
        assert run.code == 1
        (fw,) = found(report, "firewall", status="FAIL")
        assert fw["data"]["tables"] == ["inet firewalld"]
        assert fw["data"]["firewalld_active"] is False
        assert "hook forward" in evidence(fw) and "reject with icmpx" in evidence(fw)
        assert "systemd no" in evidence(fw) and "process no" in evidence(fw)
        assert fw["fix"]["safe"] is True
        (path,) = found(report, "networks", "api", "FAIL")
        assert path["data"] == {"from": "shop-api", "to": "shop-db", "ip": ip, "port": 8080,
                                "network": "shop_default", "result": "no route to host",
                                "host_reaches": True}
        assert "No route to host" in evidence(path)
        assert "from the host itself: connected" in evidence(path)

        human = cli(demo.config, "doctor", "prod", "--check", "firewall")
        assert human.code == 1
        assert "table inet firewalld" in human.out and "(safe: --fix applies it)" in human.out

        run, report = doctor(demo, "prod", "--check", "firewall", "--check", "networks",
                             "--fix")
        assert run.code == 0, run.out
        (fixed,) = report["fixes"]
        assert fixed["applied"] and fixed["proven"], fixed
        assert fixed["rechecked"]["firewall"] == "OK" and fixed["rechecked"]["networks"] == "OK"
        assert "deleted table inet firewalld" in fixed["result"]
        assert "nothing to mask" in fixed["result"]  # no systemd in a test host
        reached = found(report, "networks", "api", "OK")[0]["data"]["reached"]
        assert {"to": "shop-db", "port": 8080, "network": "shop_default"} in reached
        assert "firewalld" not in sh(demo, "nft list ruleset")
        (saved,) = sh(demo, "ls /var/lib/ferryman/shop/doctor/nft-ruleset-*.nft").split()
        assert "table inet firewalld" in sh(demo, f"cat {saved}")
        assert sh(demo, f"docker exec shop-api nc -w 2 {ip} 8080 </dev/null; echo rc=$?",
                  check=False).strip().endswith("rc=0")
        assert "step 1/2 lock prod on prod-1" in run.err and "step 2/2 fix firewall" in run.err
    finally:
        sh(demo, "nft delete table inet firewalld; docker rm -f shop-db", check=False)


def test_port_80_taken_suggests_proxy_and_proxy_config_writes_it(demo: Demo) -> None:
    # A server of the host's own (busybox httpd in the host's network) holds port 80.
    sh(demo, "docker run -d --name host-www --network host ferryman-app:v1 "
       "httpd -f -p 80 -h /www")
    conf = "/etc/nginx/conf.d/shop.example.test.conf"
    try:
        run, report = doctor(demo, "prod", "--check", "ports", "--check", "reach")
        assert run.code == 0, run.out  # a suggestion, not a failure
        (trap,) = found(report, "ports", "port 80", "WARN")
        assert trap["data"]["holder"] == ["httpd"] and trap["data"]["app_ports"] == [8080, 8081]
        assert "*:80 httpd (pid" in evidence(trap) and "docker-proxy" in evidence(trap)
        assert "ferryman proxy-config prod --domain" in trap["fix"]["text"]
        for f in found(report, "reach"):
            assert f["status"] == "WARN" and f["data"]["layer"] == 3
            assert f["data"]["layer_name"] == "port not taken"

        # No nginx on the host (Debian's is hidden for this part): the block is written to
        # ferryman's folder, not validated.
        sh(demo, "mv /usr/sbin/nginx /usr/sbin/nginx.hidden")
        pc = cli(demo.config, "proxy-config", "prod", "--domain", "shop.example.test", "--json")
        sh(demo, "mv /usr/sbin/nginx.hidden /usr/sbin/nginx")
        assert pc.code == 0, pc.err
        out = json.loads(pc.out)
        routes = {r["path"]: (r["service"], r["port"]) for r in out["routes"]}
        assert routes == {"/": ("web", 8080), "/api": ("api", 8081), "/ws": ("api", 8081)}
        assert out["nginx"] is None and out["validated"] is None
        assert out["path"] == "/var/lib/ferryman/shop/nginx/shop.example.test.conf"
        text = out["config"]
        assert "server_name shop.example.test;" in text
        assert "proxy_pass http://127.0.0.1:8081;" in text
        assert "proxy_set_header Upgrade $http_upgrade;" in text
        assert 'proxy_set_header Connection "upgrade";' in text
        assert sh(demo, f"cat {out['path']}") == text

        # Where nginx is (Debian's, as the test host has it), the block goes to its conf.d
        # and the real `nginx -t` judges it: yes for the block, then no while another file
        # of the operator's is broken, and the previous file comes back.
        sh(demo, "printf '# old\\n' > " + conf)
        pc = cli(demo.config, "proxy-config", "prod", "--domain", "shop.example.test", "--json")
        assert pc.code == 0, pc.err
        out = json.loads(pc.out)
        assert out["path"] == conf and out["validated"] is True and out["backup"]
        assert "test is successful" in out["nginx_output"]
        assert sh(demo, f"cat {conf}") == out["config"]
        assert sh(demo, f"cat {out['backup']}") == "# old\n"
        sh(demo, "printf '# old\\n' > " + conf)
        sh(demo, f"printf 'bogus_directive on;\\n' > {BROKEN}")
        pc = cli(demo.config, "proxy-config", "prod", "--domain", "shop.example.test")
        assert pc.code == 1
        assert "unknown directive" in pc.err and "previous state is back" in pc.err
        assert sh(demo, f"cat {conf}") == "# old\n"
    finally:
        sh(demo, f"docker rm -f host-www; rm -f {conf} {conf}.ferryman-*.bak {BROKEN}; "
           "rm -rf /var/lib/ferryman/shop/nginx; [ -e /usr/sbin/nginx.hidden ] && "
           "mv /usr/sbin/nginx.hidden /usr/sbin/nginx", check=False)


BROKEN = "/etc/nginx/conf.d/zz-broken.conf"


def test_deleted_compose_file_with_labels_left(demo: Demo) -> None:
    sh(demo, "mv /opt/shop/docker-compose.yml /opt/shop/docker-compose.yml.away")
    try:
        run, report = doctor(demo, "prod", "--check", "runmode")
        assert run.code == 0
        (api,) = found(report, "runmode", "api", "WARN")
        assert api["data"]["mode"] == "compose-files-missing"
        assert api["data"]["release"] == "run"
        assert api["data"]["missing"] == ["/opt/shop/docker-compose.yml"]
        assert "com.docker.compose.project=shop" in evidence(api)
        assert "/opt/shop/docker-compose.yml MISSING" in evidence(api)
        assert found(report, "runmode", "web", "OK")[0]["data"]["mode"] == "run"
    finally:
        sh(demo, "mv /opt/shop/docker-compose.yml.away /opt/shop/docker-compose.yml")
    run, report = doctor(demo, "prod", "--check", "runmode")
    assert found(report, "runmode", "api", "OK")[0]["data"]["release"] == "compose"


def test_compose_file_naming_another_image_than_runs(demo: Demo) -> None:
    """A plain `compose up -d` (a reboot script) would start what the project's files name:
    doctor says so when that is not what runs."""
    dc_file = "/opt/shop/docker-compose.yml"
    sh(demo, f"cp -p {dc_file} /tmp/dc.keep && sed -i 's/ferryman-app:v1/ferryman-app:v9/' "
             f"{dc_file}")
    try:
        run, report = doctor(demo, "prod", "--check", "runmode")
        assert run.code == 0
        (api,) = found(report, "runmode", "api", "WARN")
        assert api["data"] == {"files_name": "ferryman-app:v9", "runs": "ferryman-app:v1",
                               "file": dc_file}
        assert "would start ferryman-app:v9 again" in api["summary"]
        assert "image: ferryman-app:v9" in evidence(api)
    finally:
        sh(demo, f"cp -p /tmp/dc.keep {dc_file}")
    run, report = doctor(demo, "prod", "--check", "runmode")
    assert not found(report, "runmode", "api", "WARN")


def test_polluted_base_url_and_fix_in_place(demo: Demo) -> None:
    # The demo's PROD config names TEST: source note 000's pollution.
    inode = sh(demo, f"stat -c %i {CONFIG_FILE}").strip()
    run, report = doctor(demo, "prod", "--check", "guards")
    assert run.code == 1
    (g,) = found(report, "guards", status="FAIL")
    assert g["data"]["names"] == "test" and g["data"]["value"] == "http://10.0.0.58:9380"
    assert "cross-environment pollution" in g["summary"]
    assert '"base_url": "http://10.0.0.58:9380"' in evidence(g)
    assert g["fix"]["safe"] is True

    run, report = doctor(demo, "prod", "--check", "guards", "--fix")
    assert run.code == 0, run.out + run.err
    (fixed,) = report["fixes"]
    assert fixed["applied"] and fixed["proven"] and fixed["rechecked"] == {"guards": "OK"}
    assert "restarted api" in fixed["result"]
    assert json.loads(sh(demo, f"cat {CONFIG_FILE}"))["base_url"] == \
        f"http://{ADDRESSES['prod']}:9380"
    assert sh(demo, f"stat -c %i {CONFIG_FILE}").strip() == inode  # written in place
    (backup,) = sh(demo, f"ls {CONFIG_FILE}.ferryman-doctor-*.bak").split()
    assert ADDRESSES["test"] in sh(demo, f"cat {backup}")
    # The container reads it through a bind mount: it sees the new value.
    assert ADDRESSES["prod"] in sh(demo, "docker exec shop-api cat /www/config.json")


def test_crash_loop_and_stopped_container(demo: Demo) -> None:
    cfg = config_with(demo, "worker.yml", services="  worker:\n    container: shop-worker\n")
    sh(demo, "docker run -d --name shop-worker --restart always ferryman-app:v1 "
       "sh -c 'echo worker starting; echo cannot open /data/queue >&2; exit 3'")
    try:
        deadline = time.monotonic() + 30
        while int(sh(demo, "docker inspect -f '{{.RestartCount}}' shop-worker")) < 3:
            assert time.monotonic() < deadline, "the worker did not loop"
            time.sleep(0.5)
        run, report = doctor(demo, "prod", "--check", "containers", config=cfg)
        assert run.code == 1
        (loop,) = found(report, "containers", "worker", "FAIL")
        assert loop["data"]["kind"] == "restart-loop" and loop["data"]["exit_code"] == 3
        assert loop["data"]["restarts"] >= 3
        assert "restarting in a loop" in loop["summary"]
        assert "docker logs --tail 20 shop-worker" in evidence(loop)
        assert "cannot open /data/queue" in evidence(loop)
        # Without the worker in ferryman.yml, it is still named: it may be what breaks the app.
        run, report = doctor(demo, "prod", "--check", "containers")
        (other,) = found(report, "containers", "shop-worker", "WARN")
        assert "not a service in ferryman.yml" in other["summary"]

        sh(demo, "docker stop web")
        run, report = doctor(demo, "prod", "--check", "containers", "--check", "reach")
        (web,) = found(report, "containers", "web", "FAIL")
        assert web["data"]["kind"] == "stopped" and "not running: exited" in web["summary"]
        (layer,) = found(report, "reach", "web", "FAIL")
        assert layer["data"]["layer"] == 1 and layer["data"]["layer_name"] == "container up"
    finally:
        sh(demo, "docker rm -f shop-worker; docker start web", check=False)


def test_nearly_full_backup_folder(demo: Demo) -> None:
    cfg = config_with(demo, "data.yml",
                      data="data:\n  paths: [/opt/shop]\n  backup_dir: /srv/backups\n")
    sh(demo, "mkdir -p /srv/backups && mount -t tmpfs -o size=1m tmpfs /srv/backups && "
       "dd if=/dev/zero of=/srv/backups/old.tar bs=4k 2>/dev/null; true")
    try:
        run, report = doctor(demo, "prod", "--check", "disk", config=cfg)
        assert run.code == 1
        (full,) = found(report, "disk", "backup dir", "FAIL")
        assert full["data"]["path"] == "/srv/backups"
        assert full["data"]["free"] < full["data"]["need"]
        assert "df -Pk -- /srv/backups" in evidence(full) or "ferryman-df" in evidence(full)
        assert "/srv/backups" in evidence(full) and "100%" in evidence(full)
        assert "du" in evidence(full) and "/opt/shop" in evidence(full)
        assert found(report, "disk", "docker root", "OK")
    finally:
        sh(demo, "umount /srv/backups", check=False)


def test_dns_layer_reads_the_hosts_own_resolver(demo: Demo) -> None:
    # Names resolve from the host's /etc/hosts only; a miss asks 127.0.0.1, where nothing
    # answers, so no query leaves the test host.
    sh(demo, "cp /etc/resolv.conf /tmp/resolv.conf.doc && cp /etc/hosts /tmp/hosts.doc && "
       "echo 'nameserver 127.0.0.1' > /etc/resolv.conf && "
       f"printf '%s shop.example.test\\n10.9.9.9 elsewhere.example.test\\n' "
       f"{ADDRESSES['prod']} >> /etc/hosts")
    try:
        run, report = doctor(demo, "prod", "--check", "reach", "--domain", "shop.example.test")
        assert run.code == 0, run.out
        for f in found(report, "reach"):
            assert f["status"] == "OK" and f["data"]["suspect"] == "security group"
            assert f["data"]["layers"][-1] == {"n": 6, "name": "DNS", "ok": True, "detail":
                                               f"shop.example.test resolves to "
                                               f"{ADDRESSES['prod']}"}
        run, report = doctor(demo, "prod", "--check", "reach", "--domain",
                             "elsewhere.example.test")
        assert run.code == 1
        f = found(report, "reach", "web", "FAIL")[0]
        assert f["data"]["layer"] == 6 and "resolves to 10.9.9.9, not to this host" in \
            f["summary"]
        assert "getent ahosts elsewhere.example.test" in evidence(f)
    finally:
        sh(demo, "cat /tmp/resolv.conf.doc > /etc/resolv.conf; "
           "cat /tmp/hosts.doc > /etc/hosts", check=False)


def test_unreachable_host_exits_3(demo: Demo) -> None:
    cfg = demo.config.parent / "closed.yml"
    port = demo.hosts["prod"].port
    cfg.write_text(demo.config.read_text().replace(f"127.0.0.1:{port}", "127.0.0.1:1"))
    run, report = doctor(demo, "prod", config=cfg)
    assert run.code == 3
    assert report["hosts"] == [{"env": "prod", "host": "prod-1", "reachable": False,
                                "status": "FAIL"}]
    (ssh,) = report["findings"]
    assert ssh["check"] == "host" and ssh["subject"] == "ssh" and "127.0.0.1:1" in ssh["summary"]
