"""Pure parts of the doctor checks, fed with what real test hosts printed: `ss -tlnp`, `df -Pk`,
connect attempts, `getent ahosts`, `docker ps`, `docker network inspect`, `docker inspect`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ferryman.checks import containers, disk, firewall, host, networks, ports, probe, reach
from ferryman.checks.ss import others_on, parse_listeners
from ferryman.docker.commands import parse_df
from ferryman.docker.inspect import parse_containers

DATA = Path(__file__).parent / "data"

# A test host with busybox httpd holding port 80 in the host's own network namespace.
SS = """\
State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=1,fd=3))
LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*    users:(("docker-proxy",pid=235,fd=4))
LISTEN 0      4096         0.0.0.0:8081      0.0.0.0:*    users:(("docker-proxy",pid=362,fd=4))
LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=1,fd=4))
LISTEN 0      9                  *:80              *:*    users:(("httpd",pid=3813,fd=3))
"""

# A 1 MB tmpfs as the backup folder, filled up.
DF_FULL = """\
Filesystem     1024-blocks  Used Available Capacity Mounted on
tmpfs                 1024  1024         0     100% /srv/backups
"""


def test_listeners() -> None:
    found = parse_listeners(SS)
    assert [(x.address, x.port, x.names) for x in found] == [
        ("0.0.0.0", 22, ["sshd"]), ("0.0.0.0", 8080, ["docker-proxy"]),
        ("0.0.0.0", 8081, ["docker-proxy"]), ("::", 22, ["sshd"]), ("*", 80, ["httpd"])]
    (www,) = others_on(found, 80)
    assert www.who == "httpd (pid 3813)" and www.endpoint == "*:80"
    assert others_on(found, 8081) == []
    assert ports.web_holder(found) is www


def test_listeners_without_root_show_no_process() -> None:
    text = ("State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
            "LISTEN 0      511          0.0.0.0:80        0.0.0.0:*\n")
    (x,) = parse_listeners(text)
    assert x.port == 80 and x.processes == [] and not x.docker
    assert "cannot name" in x.who


def test_df_of_a_full_folder_fails_a_backup() -> None:
    assert parse_df(DF_FULL) == (1024 * 1024, 0)
    level, text = disk.judge("backup folder", "/srv/backups", parse_df(DF_FULL), 12 * 1024,
                             "a backup")
    assert level == "FAIL"
    assert text == ("backup folder /srv/backups: 0 B free of 1.0 MB (100% used), but a backup "
                    "needs about 12.0 KB")
    assert disk.judge("x", "/", (100 << 20, 50 << 20), 10 << 20, "y")[0] == "OK"
    assert disk.judge("x", "/", (100 << 20, 15 << 20), 10 << 20, "y")[0] == "WARN"
    assert disk.judge("x", "/", (100 << 20, 5 << 20), None, "y")[0] == "WARN"  # 95% used
    assert disk.sum_du("12\t/opt/shop\n4\t/srv/data\n") == 16 * 1024
    assert disk.sum_sizes("sha256:aa linux/amd64 1982399\nsha256:bb linux/amd64 100\n") == 1982499


def test_connect_outcomes() -> None:
    # bash's /dev/tcp run by nsenter in a container's namespace, and busybox nc.
    no_route = probe.classify(1, "ferryman-tcp: connect: No route to host\n"
                                 "ferryman-tcp: line 1: /dev/tcp/172.19.0.3/8080: No route to host")
    assert no_route.result == probe.NO_ROUTE
    assert no_route.message.endswith("/dev/tcp/172.19.0.3/8080: No route to host")
    refused = probe.classify(1, "nc: can't connect to remote host (172.19.0.3): "
                                "Connection refused")
    assert refused.result == probe.REFUSED
    assert probe.classify(124, "").result == probe.TIMEOUT
    assert probe.classify(0, "").open
    assert probe.classify(2, "weird").result == probe.UNKNOWN


def test_getent_and_firewalld_state() -> None:
    out = ("10.0.0.57       STREAM shop.example.test\n10.0.0.57       DGRAM  \n"
           "10.0.0.57       RAW    \n")
    assert reach.parse_addresses(out) == ["10.0.0.57"]
    assert reach.parse_addresses("") == []
    state = firewall.parse_firewalld("systemd no\nprocess no\n")
    assert (state.systemd, state.active) == (False, False)
    state = firewall.parse_firewalld("systemd yes\nactive inactive\nenabled masked\nprocess no\n")
    assert (state.systemd, state.active, state.enabled) == (True, False, "masked")
    assert firewall.parse_firewalld("systemd yes\nactive active\nprocess yes\n").active


def test_docker_ps_and_network_members() -> None:
    ps = ("crash\tRestarting (3) 1 second ago\nshop-api\tUp 15 minutes (healthy)\n"
          "web\tUp 15 minutes\n")
    assert containers.parse_ps(ps)["crash"].startswith("Restarting")
    inspect = json.dumps([{"Name": "shop_default", "Containers": {
        "35c3": {"Name": "shop-worker", "IPv4Address": "172.19.0.3/16", "IPv6Address": ""},
        "ab99": {"Name": "shop-api", "IPv4Address": "172.19.0.2/16", "IPv6Address": ""}}}])
    assert networks.members(inspect) == {
        "shop_default": {"shop-worker": "172.19.0.3", "shop-api": "172.19.0.2"}}
    assert networks.members("not json") == {}


def test_ports_networks_and_states_from_inspect() -> None:
    facts = parse_containers((DATA / "inspect_run_and_compose.json").read_text())
    web, api = facts["web"], facts["demo_api_1"]
    assert [b.text for b in ports.bindings(web)] == ["0.0.0.0:8080->8080/tcp"]
    assert [b.host_port for b in ports.bindings(api)] == [8081]
    assert networks.networks_of(api) == ["demo_default"]
    assert networks.tcp_ports(web) == [8080]
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert containers.verdict(web, now) == ("OK", "running", "running")

    stopped = parse_containers((DATA / "inspect_stopped.json").read_text())["web"]
    # Not running: what it asked for is what it will need when it starts again.
    assert [b.host_port for b in ports.bindings(stopped)] == [8080]
    assert ports.bindings(stopped, live=True) == []
    assert containers.verdict(stopped, now) == ("FAIL", "not running: exited with code 137",
                                                "stopped")


def test_crash_loop_verdict() -> None:
    facts = parse_containers((DATA / "inspect_stopped.json").read_text())["web"]
    facts.status, facts.restarts, facts.exit_code = "restarting", 5, 3
    level, summary, kind = containers.verdict(facts)
    assert (level, kind) == ("FAIL", "restart-loop")
    assert summary.startswith("restarting in a loop: 5 restarts so far, last exit code 3")
    facts.status, facts.oom_killed = "exited", True
    assert containers.verdict(facts)[2] == "oom"
    assert "OOM" in containers.verdict(facts)[1]


def test_docker_times_and_host_facts() -> None:
    now = datetime(2026, 11, 23, 10, 40, 10, tzinfo=UTC)
    assert round(containers.age_seconds("2026-11-23T10:40:05.5Z", now) or 0, 1) == 4.5
    assert containers.age_seconds("0001-01-01T00:00:00Z", now) is None
    assert host.version_tuple("20.10.24+dfsg1") == (20, 10, 24)
    assert host.version_tuple("3.10.0-1160.el7.x86_64") == (3, 10, 0)
    assert host.normal_arch("x86_64") == "amd64" and host.normal_arch("aarch64") == "arm64"
    assert host.storage("overlay2")[0] == "OK"
    assert host.storage("devicemapper")[0] == "WARN"
    denied = host.docker_denied("permission denied while trying to connect to the Docker "
                                "daemon socket at unix:///var/run/docker.sock")
    assert denied.status == "FAIL" and "docker group" in (denied.fix.text if denied.fix else "")
