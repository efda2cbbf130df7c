"""Recreating containers from `docker inspect` captured on a real engine (docker 20.10, CLI 28).

runspec_full.json: `ferryman-rs-full`, made from ferryman-app:v1 (runspec_image_v1.json) with
nearly every option `docker create` takes here (the same command as in
tests/integration/test_runspec.py), then `docker network connect --alias web-b --ip 10.232.0.20
ferryman-rs-b`. runspec_image_rich.json: an image with defaults of every kind (env, labels,
user, a two-word entrypoint, a healthcheck, a volume, a stop signal), committed from a
configured container. runspec_others.json, made from it or from v1:
  ferryman-rs-none   --network none --no-healthcheck -e LANG=C.UTF-8 (as in the image)
                     -e APP_MODE=prod --label tier=web (as in the image) --label team=ops
                     --user 0 ferryman-rs-rich:1 'exec httpd -f -p 8081 -h /www'
  ferryman-rs-plain  -P --label com.docker.compose.project=demo
                     --label com.docker.compose.service=web ferryman-rs-rich:1
  ferryman-rs-host   --network host --pid host --ipc host --uts host --restart on-failure:3
                     --oom-kill-disable --memory 64m --log-driver none ferryman-app:v1
  ferryman-rs-join   --network container:ferryman-rs-plain --restart always ferryman-app:v1
"""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from ferryman.docker.runspec import RunSpec, run_spec

DATA = Path(__file__).parent / "data"
NEW = "ferryman-app:v2"


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"runspec_{name}.json").read_text())


FULL = _load("full")[0]
V1 = _load("image_v1")[0]
RICH = _load("image_rich")[0]
OTHERS = {c["Name"].lstrip("/"): c for c in _load("others")}
# Anonymous volumes, as named in the captured Mounts.
ANON_CACHE = "da6fdfd1b8f0f129e13804fbd59a6493810f4ba44a8452b90912e39269f14cca"
ANON_APP_NONE = "3e66f176898871e2e0160405ae4a019f67e3e979465f921859949d7a295e0f80"
ANON_APP_PLAIN = "da70650aa0222872d64b23deeca0d4ba3992e3855cdffeb92da833cc0e52c4a3"


def values(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` among the options (the words before the image)."""
    opts = argv[:argv.index(NEW)] if NEW in argv else argv
    return [opts[i + 1] for i, word in enumerate(opts[:-1]) if word == flag]


def after_image(spec: RunSpec, image: str = NEW) -> list[str]:
    return spec.create[spec.create.index(image) + 1:]


def options(spec: RunSpec, image: str = NEW) -> list[str]:
    return spec.create[4:spec.create.index(image)]


@pytest.fixture
def full() -> RunSpec:
    return run_spec(FULL, V1, NEW, name="web-next")


def test_captured_data_belongs_together() -> None:
    assert FULL["Image"] == V1["Id"]
    assert OTHERS["ferryman-rs-none"]["Image"] == RICH["Id"]
    assert OTHERS["ferryman-rs-host"]["Image"] == V1["Id"]


def test_full_container_whole_argv(full: RunSpec) -> None:
    assert full.name == "web-next"
    assert full.create == [
        "docker", "create", "--name", "web-next",
        "--network", "ferryman-rs-a", "--network-alias", "web-a", "--network-alias", "www",
        "--ip", "10.231.0.10",
        "-p", "127.0.0.1:18053:53/udp", "-p", "127.0.0.1:18080:8080", "-p", "18081:8081",
        "-p", "9090",
        "-v", "/tmp/ferryman-rs-bind:/etc/app:ro", "-v", "ferryman-rs-data:/data",
        "--mount", "type=bind,src=/tmp/ferryman-rs-bind,dst=/srv/cfg,bind-propagation=private",
        "--mount", "type=tmpfs,dst=/mnt/t,tmpfs-size=1048576,tmpfs-mode=0700",
        "--mount", f"type=volume,src={ANON_CACHE},dst=/cache",
        "--tmpfs", "/run:rw,size=16m,mode=1777", "--tmpfs", "/scratch",
        "--restart", "unless-stopped",
        "--hostname", "shop-web", "--domainname", "example.internal",
        "--add-host", "db:10.0.0.57", "--add-host", "cache.local:10.231.0.6",
        "--dns", "10.231.0.2", "--dns-search", "example.internal", "--dns-option", "ndots:2",
        "--log-driver", "json-file", "--log-opt", "max-file=3", "--log-opt", "max-size=10m",
        "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "CAP_MKNOD", "--cap-drop", "CAP_NET_RAW",
        "--device", "/dev/null:/dev/xnull:rw", "--device-cgroup-rule", "c 1:3 r",
        "--security-opt", "no-new-privileges", "--read-only", "--group-add", "50", "--init",
        "--memory", "268435456", "--memory-reservation", "134217728",
        "--memory-swap", "402653184", "--cpus", "1.5", "--cpu-shares", "512",
        "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "100",
        "--oom-score-adj", "100", "--shm-size", "134217728", "--memory-swappiness", "10",
        "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512:1024",
        "--sysctl", "net.core.somaxconn=1024", "--sysctl", "net.ipv4.ip_unprivileged_port_start=0",
        "--userns", "host",
        "-e", "APP_MODE=prod", "-e", "DB_URL=postgres://u:p@10.231.0.5/db?sslmode=require&x=1",
        "-e", "GREETING=hello big world", "-e", "APP_URL=http://10.0.0.57:8080/",
        "--label", "app=shop", "--label", "note=a b=c", "--label", "owner=ops team",
        "--user", "1000:1000", "--expose", "9000", "-t", "-i",
        "--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8080/health",
        "--health-interval", "5s", "--health-timeout", "2s", "--health-start-period", "1s",
        "--health-retries", "3",
        "--stop-signal", "SIGUSR1", "--stop-timeout", "7",
        "--entrypoint", "httpd",
        NEW, "-f", "-p", "8080", "-h", "/www",
    ]
    assert full.connects == [["docker", "network", "connect", "--alias", "web-b",
                              "--ip", "10.232.0.20", "ferryman-rs-b", "web-next"]]


def test_ports_exact(full: RunSpec) -> None:
    # Empty HostIp is every interface (no 0.0.0.0 pinned, no 127.0.0.1 invented);
    # empty HostPort a random one.
    assert values(full.create, "-p") == [
        "127.0.0.1:18053:53/udp", "127.0.0.1:18080:8080", "18081:8081", "9090"]
    assert "-P" not in full.create


def test_mounts_keep_volume_names(full: RunSpec) -> None:
    mounts = values(full.create, "--mount")
    assert "ferryman-rs-data:/data" in values(full.create, "-v")
    # The anonymous volume by its name, so the data follows; not `-v /cache` (a new volume).
    assert f"type=volume,src={ANON_CACHE},dst=/cache" in mounts
    assert "/cache" not in values(full.create, "-v")
    assert values(full.create, "--tmpfs") == ["/run:rw,size=16m,mode=1777", "/scratch"]


def test_networks_aliases_and_static_ips(full: RunSpec) -> None:
    opts = options(full)
    assert opts[:8] == ["--network", "ferryman-rs-a", "--network-alias", "web-a",
                        "--network-alias", "www", "--ip", "10.231.0.10"]
    # The short id and the hostname are aliases the engine adds by itself.
    aliases = values(full.create, "--network-alias") + values(full.connects[0], "--alias")
    assert FULL["Id"][:12] not in aliases and "shop-web" not in aliases
    assert aliases == ["web-a", "www", "web-b"]
    # Assigned addresses are not pinned, only IPAMConfig.
    assert "10.231.0.1" not in full.create


def test_limits_and_security(full: RunSpec) -> None:
    argv = full.create
    assert values(argv, "--ulimit") == ["nofile=1024:2048", "nproc=512:1024"]
    assert values(argv, "--sysctl") == ["net.core.somaxconn=1024",
                                        "net.ipv4.ip_unprivileged_port_start=0"]
    assert values(argv, "--cpus") == ["1.5"]
    assert values(argv, "--memory") == [str(256 * 2**20)]
    assert values(argv, "--memory-swap") == [str(384 * 2**20)]
    assert values(argv, "--shm-size") == [str(128 * 2**20)]
    assert values(argv, "--pids-limit") == ["100"]
    assert values(argv, "--security-opt") == ["no-new-privileges"]
    assert values(argv, "--device") == ["/dev/null:/dev/xnull:rw"]
    assert values(argv, "--group-add") == ["50"]
    for flag in ("--init", "--read-only", "-t", "-i"):
        assert flag in argv
    for flag in ("--privileged", "--oom-kill-disable", "--runtime", "--ipc", "--pid", "-P"):
        assert flag not in argv


def test_values_with_spaces_and_equals_are_one_word(full: RunSpec) -> None:
    assert "GREETING=hello big world" in full.create
    assert "note=a b=c" in full.create
    assert "DB_URL=postgres://u:p@10.231.0.5/db?sslmode=require&x=1" in full.create
    for argv, line in zip([full.create, *full.connects], full.command_lines(), strict=True):
        assert shlex.split(line) == argv


def test_image_defaults_stay_out_of_the_full_container(full: RunSpec) -> None:
    # WORKDIR /www and EXPOSE 8080 are v1's: v2 decides them.
    assert "--workdir" not in full.create
    assert "8080" not in values(full.create, "--expose")
    # --entrypoint drops the image's CMD, so the container's cmd is passed in full.
    assert after_image(full) == ["-f", "-p", "8080", "-h", "/www"]


def test_overrides_in_and_defaults_out() -> None:
    spec = run_spec(OTHERS["ferryman-rs-none"], RICH, NEW)
    # LANG, tier, workdir, stop signal, entrypoint, exposed 8443 are the image's.
    assert options(spec) == [
        "--network", "none",
        "--mount", f"type=volume,src={ANON_APP_NONE},dst=/var/lib/app",
        "-e", "APP_MODE=prod", "--label", "team=ops", "--user", "0", "--no-healthcheck",
    ]
    assert after_image(spec) == ["exec httpd -f -p 8081 -h /www"]
    assert spec.connects == []


def test_defaults_only_container_and_compose_labels() -> None:
    spec = run_spec(OTHERS["ferryman-rs-plain"], RICH, NEW)
    assert spec.create == [
        "docker", "create", "--name", "ferryman-rs-plain", "-P",
        "--mount", f"type=volume,src={ANON_APP_PLAIN},dst=/var/lib/app",
        NEW,
    ]
    assert spec.carried == []


def test_unknown_image_counts_everything_as_set() -> None:
    spec = run_spec(OTHERS["ferryman-rs-plain"], None, NEW)
    argv = spec.create
    assert values(argv, "-e") == ["APP_MODE=dev", "LANG=C.UTF-8"]
    # Compose's own labels never: they would tie the container to a project it is not in.
    assert values(argv, "--label") == ["org.opencontainers.image.title=shop", "tier=web"]
    assert values(argv, "--user") == ["1000"] and values(argv, "--workdir") == ["/www"]
    assert values(argv, "--expose") == ["8080", "8443"]
    assert values(argv, "--health-cmd") == ["wget -q -O /dev/null http://127.0.0.1:8080/health"]
    assert values(argv, "--health-interval") == ["10s"]
    assert values(argv, "--stop-signal") == ["SIGQUIT"]
    # ENTRYPOINT ["sh", "-c"]: one word for --entrypoint, the rest before the cmd.
    assert values(argv, "--entrypoint") == ["sh"]
    assert after_image(spec) == ["-c", "exec httpd -f -p 8080 -h /www"]


def test_unknown_image_without_entrypoint_keeps_it_empty() -> None:
    spec = run_spec(OTHERS["ferryman-rs-host"], None, NEW)
    assert values(spec.create, "--entrypoint") == [""]
    assert after_image(spec) == ["httpd", "-f", "-p", "8080", "-h", "/www"]


def test_host_network_mode() -> None:
    spec = run_spec(OTHERS["ferryman-rs-host"], V1, NEW)
    # The daemon added label=disable itself for the host namespaces; passing it again is a no-op.
    # --memory-swap is left out: the engine sets twice --memory by itself.
    assert options(spec) == [
        "--network", "host", "--restart", "on-failure:3", "--log-driver", "none",
        "--security-opt", "label=disable", "--memory", str(64 * 2**20), "--oom-kill-disable",
        "--pid", "host", "--ipc", "host", "--uts", "host",
    ]
    # Hostname "vm" is the host's own name, not one the operator gave.
    assert OTHERS["ferryman-rs-host"]["Config"]["Hostname"] == "vm"
    assert after_image(spec) == []


def test_container_network_mode_sets_nothing_of_the_netns() -> None:
    join = OTHERS["ferryman-rs-join"]
    spec = run_spec(join, None, NEW)
    assert options(spec)[:4] == ["--network", join["HostConfig"]["NetworkMode"],
                                 "--restart", "always"]
    for flag in ("--hostname", "--expose", "-p", "--dns", "--add-host"):
        assert flag not in options(spec)


def test_bootstrap_rewrite_and_carried() -> None:
    spec = run_spec(FULL, V1, NEW, rewrite=lambda v: v.replace("10.0.0.57", "10.0.0.58"))
    assert "APP_URL=http://10.0.0.58:8080/" in spec.create
    assert values(spec.create, "--add-host") == ["db:10.0.0.58", "cache.local:10.231.0.6"]
    assert spec.carried == [
        "bind mount /tmp/ferryman-rs-bind at /etc/app (read-only)",
        "bind mount /tmp/ferryman-rs-bind at /srv/cfg",
        "published port 127.0.0.1:18053:53/udp",
        "published port 127.0.0.1:18080:8080",
        "published port 18081:8081",
        "published port 9090",
        "extra-host db: 10.0.0.57 -> 10.0.0.58",
        "env APP_URL: http://10.0.0.57:8080/ -> http://10.0.0.58:8080/",
    ]


def test_rewrite_reaches_labels_and_command_words() -> None:
    spec = run_spec(OTHERS["ferryman-rs-plain"], None, NEW,
                    rewrite=lambda v: v.replace("8080", "9090").replace("shop", "store"))
    assert after_image(spec) == ["-c", "exec httpd -f -p 9090 -h /www"]
    assert "org.opencontainers.image.title=store" in spec.create
    assert spec.carried == [
        "label org.opencontainers.image.title: shop -> store",
        "cmd word: exec httpd -f -p 8080 -h /www -> exec httpd -f -p 9090 -h /www",
    ]


def test_rewrite_leaves_image_defaults_unnoted() -> None:
    spec = run_spec(OTHERS["ferryman-rs-plain"], RICH, NEW, rewrite=lambda v: v.upper())
    assert spec.carried == []


# --- variations on the captured data ----------------------------------------------------------

def _edit(container: dict[str, Any], **config: Any) -> dict[str, Any]:
    c = copy.deepcopy(container)
    c["Config"].update(config)
    return c


def test_changed_multiword_entrypoint() -> None:
    c = _edit(OTHERS["ferryman-rs-plain"], Entrypoint=["/bin/sh", "-e", "-c"])
    spec = run_spec(c, RICH, NEW)
    assert values(spec.create, "--entrypoint") == ["/bin/sh"]
    assert after_image(spec) == ["-e", "-c", "exec httpd -f -p 8080 -h /www"]


def test_cleared_entrypoint() -> None:
    # `--entrypoint ""` shows as Entrypoint null; the image had one.
    c = _edit(OTHERS["ferryman-rs-plain"], Entrypoint=None, Cmd=["httpd", "-f"])
    spec = run_spec(c, RICH, NEW)
    assert values(spec.create, "--entrypoint") == [""]
    assert after_image(spec) == ["httpd", "-f"]


def test_cmd_only_override_keeps_image_entrypoint() -> None:
    spec = run_spec(OTHERS["ferryman-rs-none"], RICH, NEW)
    assert "--entrypoint" not in spec.create


def test_image_default_cmd_and_workdir_follow_new_image() -> None:
    c = _edit(OTHERS["ferryman-rs-host"], Env=["A=1"])
    spec = run_spec(c, V1, NEW)
    assert after_image(spec) == []
    assert "--workdir" not in spec.create
    changed = run_spec(_edit(c, WorkingDir="/srv", Cmd=["httpd", "-f", "-p", "81"]), V1, NEW)
    assert values(changed.create, "--workdir") == ["/srv"]
    assert after_image(changed) == ["httpd", "-f", "-p", "81"]


def test_healthcheck_fields_compared_one_by_one() -> None:
    image_check = RICH["Config"]["Healthcheck"]
    c = _edit(OTHERS["ferryman-rs-plain"],
              Healthcheck={**image_check, "Timeout": 1_500_000_000, "Retries": 5})
    argv = run_spec(c, RICH, NEW).create
    assert "--health-cmd" not in argv and "--health-interval" not in argv
    assert values(argv, "--health-timeout") == ["1500ms"]
    assert values(argv, "--health-retries") == ["5"]
    exec_form = _edit(c, Healthcheck={"Test": ["CMD", "wget", "-q", "http://x/a b"]})
    assert values(run_spec(exec_form, RICH, NEW).create, "--health-cmd") == [
        "wget -q 'http://x/a b'"]


def test_disabled_check_matching_image_is_left_out() -> None:
    image = copy.deepcopy(RICH)
    image["Config"]["Healthcheck"] = {"Test": ["NONE"]}
    assert "--no-healthcheck" not in run_spec(OTHERS["ferryman-rs-none"], image, NEW).create
    assert "--no-healthcheck" in run_spec(OTHERS["ferryman-rs-none"], None, NEW).create


def test_mount_fields_with_commas_are_quoted() -> None:
    c = copy.deepcopy(FULL)
    (srv,) = [m for m in c["Mounts"] if m["Destination"] == "/srv/cfg"]
    srv["Source"] = '/srv/a,b "c"'
    mounts = values(run_spec(c, V1, NEW).create, "--mount")
    assert mounts[0] == 'type=bind,"src=/srv/a,b ""c""",dst=/srv/cfg,bind-propagation=private'


def test_binds_come_back_as_the_operator_wrote_them() -> None:
    """HostConfig.Binds -> -v with its mode options, HostConfig.Mounts -> --mount: a bind
    written with -v must not turn into --mount, which fails where the folder is gone."""
    spec = run_spec(FULL, V1, NEW)
    assert FULL["HostConfig"]["Binds"] == ["/tmp/ferryman-rs-bind:/etc/app:ro",
                                           "ferryman-rs-data:/data"]
    assert values(spec.create, "-v") == FULL["HostConfig"]["Binds"]
    mounts = values(spec.create, "--mount")
    assert not [m for m in mounts if "dst=/etc/app" in m or "dst=/data" in m]
    # The bind given with --mount stays --mount, with its propagation.
    assert ("type=bind,src=/tmp/ferryman-rs-bind,dst=/srv/cfg,bind-propagation=private"
            in mounts)
    c = copy.deepcopy(FULL)
    c["HostConfig"]["Binds"] = ["/srv/data:/data:rw,z,rshared"]
    assert "/srv/data:/data:rw,z,rshared" in values(run_spec(c, V1, NEW).create, "-v")


def test_default_bridge_plus_user_network() -> None:
    c = copy.deepcopy(FULL)
    c["HostConfig"]["NetworkMode"] = "default"
    nets = c["NetworkSettings"]["Networks"]
    nets["bridge"] = {"IPAMConfig": None, "Aliases": None, "NetworkID": "c365d3b4b990"}
    spec = run_spec(c, V1, NEW, name="x")
    assert "--network" not in spec.create and "--network-alias" not in spec.create
    assert [argv[-2] for argv in spec.connects] == ["ferryman-rs-a", "ferryman-rs-b"]
    assert spec.connects[0] == ["docker", "network", "connect", "--alias", "web-a", "--alias",
                                "www", "--ip", "10.231.0.10", "ferryman-rs-a", "x"]


def test_network_mode_given_by_id() -> None:
    c = copy.deepcopy(FULL)
    c["HostConfig"]["NetworkMode"] = nets_id = c["NetworkSettings"]["Networks"][
        "ferryman-rs-b"]["NetworkID"]
    spec = run_spec(c, V1, NEW, name="x")
    assert nets_id.startswith("b304b7be")
    assert options(spec)[:2] == ["--network", "ferryman-rs-b"]
    assert [argv[-2] for argv in spec.connects] == ["ferryman-rs-a"]


def test_port_and_restart_variants() -> None:
    c = copy.deepcopy(FULL)
    c["HostConfig"]["PortBindings"] = {
        "80/tcp": [{"HostIp": "::1", "HostPort": "8080"}],
        "81/sctp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }
    c["HostConfig"]["RestartPolicy"] = {"Name": "on-failure", "MaximumRetryCount": 0}
    argv = run_spec(c, V1, NEW).create
    assert values(argv, "-p") == ["[::1]:8080:80", "127.0.0.1::81/sctp"]
    assert values(argv, "--restart") == ["on-failure"]
    c["HostConfig"]["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    assert "--restart" not in run_spec(c, V1, NEW).create


def test_default_hostname_and_plain_json_file_log_left_out() -> None:
    c = copy.deepcopy(FULL)
    c["Config"]["Hostname"] = c["Id"][:12]
    c["HostConfig"]["LogConfig"] = {"Type": "json-file", "Config": {}}
    c["HostConfig"]["ShmSize"] = 64 * 2**20
    argv = run_spec(c, V1, NEW).create
    for flag in ("--hostname", "--log-driver", "--log-opt", "--shm-size"):
        assert flag not in argv
