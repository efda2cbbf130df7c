"""Helpers shared by the integration tests that compare containers field by field on the
local engine: docker calls, a scene of uniquely named networks and volumes, nearly every option
`docker create` takes, and the fields that must survive a recreate.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

Json = dict[str, Any]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"docker {' '.join(args[:3])}: {proc.stderr.strip()}"
    return proc


def run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{argv[:4]}: {proc.stderr.strip()}"


def inspect(name: str) -> Json:
    return json.loads(docker("inspect", "--type", "container", name).stdout)[0]


def image_inspect(ref: str) -> Json:
    return json.loads(docker("image", "inspect", ref).stdout)[0]


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_healthy(name: str, timeout: float = 60) -> None:
    """Until the healthcheck passes; without one, until it has run for a second."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        state = inspect(name)["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy" or (health is None and time.monotonic() - started > 1):
            return
        assert state["Running"], f"{name} is not running: {state.get('Error')}"
        assert time.monotonic() < deadline, f"{name} not healthy: {state.get('Health')}"
        time.sleep(0.5)


@dataclass
class Scene:
    """Names with a random suffix, so parallel runs and leftovers never collide."""

    suffix: str
    bind_dir: Path
    net_a: str = ""
    net_b: str = ""
    subnet: int = 0  # third octet of 10.231.N.0/24 (net_a) and 10.232.N.0/24 (net_b)
    volume: str = ""
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def name(self, what: str) -> str:
        self.containers.append(f"ferryman-rs-it-{self.suffix}-{what}")
        return self.containers[-1]

    def ip_a(self, host: int) -> str:
        return f"10.231.{self.subnet}.{host}"

    def ip_b(self, host: int) -> str:
        return f"10.232.{self.subnet}.{host}"


def make_networks(s: Scene) -> None:
    for _ in range(10):  # a random /24 may be taken by another network; try another
        s.subnet = random.randint(1, 254)
        a, b = f"ferryman-rs-it-{s.suffix}-a", f"ferryman-rs-it-{s.suffix}-b"
        if docker("network", "create", "--subnet", f"10.231.{s.subnet}.0/24", a,
                  check=False).returncode != 0:
            continue
        s.networks.append(a)
        if docker("network", "create", "--subnet", f"10.232.{s.subnet}.0/24", b,
                  check=False).returncode != 0:
            docker("network", "rm", s.networks.pop(), check=False)
            continue
        s.networks.append(b)
        s.net_a, s.net_b = a, b
        return
    pytest.fail("no free 10.231.N.0/24 and 10.232.N.0/24 subnets")


def full_options(s: Scene) -> list[str]:
    """Nearly every option `docker create` takes on this engine (--privileged is refused)."""
    return [
        "--network", s.net_a, "--network-alias", "web-a", "--network-alias", "www",
        "--ip", s.ip_a(10),
        "-p", f"127.0.0.1:{free_port()}:8080", "-p", f"{free_port('0.0.0.0')}:8081",
        "-p", f"127.0.0.1:{free_port(kind=socket.SOCK_DGRAM)}:53/udp", "-p", "9090",
        "--expose", "9000",
        "-v", f"{s.bind_dir}:/etc/app:ro",
        "--mount", f"type=bind,src={s.bind_dir},dst=/srv/cfg,bind-propagation=private",
        "--mount", "type=tmpfs,dst=/mnt/t,tmpfs-size=1048576,tmpfs-mode=0700",
        "-v", f"{s.volume}:/data", "-v", "/cache",
        "--tmpfs", "/run:rw,size=16m,mode=1777", "--tmpfs", "/scratch",
        "--restart", "unless-stopped",
        "-e", "APP_MODE=prod", "-e", "DB_URL=postgres://u:p@10.231.0.5/db?sslmode=require&x=1",
        "-e", "GREETING=hello big world", "-e", "APP_URL=http://10.0.0.57:8080/",
        "--label", "app=shop", "--label", "note=a b=c", "--label", "owner=ops team",
        "--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8080/health",
        "--health-interval", "2s", "--health-timeout", "2s", "--health-retries", "3",
        "--health-start-period", "1s",
        "--user", "1000:1000", "--workdir", "/www", "--entrypoint", "httpd",
        "--hostname", "shop-web", "--domainname", "example.internal",
        "--add-host", "db:10.0.0.57", "--add-host", f"cache.local:{s.ip_a(6)}",
        "--dns", s.ip_a(2), "--dns-search", "example.internal", "--dns-option", "ndots:2",
        "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3",
        "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--cap-drop", "NET_RAW",
        "--device", "/dev/null:/dev/xnull:rw", "--device-cgroup-rule", "c 1:3 r",
        "--userns", "host",
        "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512:1024",
        "--sysctl", "net.ipv4.ip_unprivileged_port_start=0",
        "--sysctl", "net.core.somaxconn=1024",
        "--memory", "256m", "--memory-reservation", "128m", "--memory-swap", "384m",
        "--memory-swappiness", "10", "--oom-score-adj", "100",
        "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0",
        "--pids-limit", "100", "--init", "--shm-size", "128m",
        "--security-opt", "no-new-privileges", "--read-only", "--group-add", "50",
        "--stop-signal", "SIGUSR1", "--stop-timeout", "7", "-t", "-i",
    ]


def at(path: str) -> Callable[[Json], Any]:
    def get(d: Json) -> Any:
        for key in path.split("."):
            d = (d or {}).get(key)
        return d
    return get


def mounts(d: Json) -> list[tuple[Any, ...]]:
    """Mode is left out: `-v` writes "z" for volumes, --mount nothing; it means the same."""
    return sorted((m["Type"], m.get("Name", ""), m["Source"], m["Destination"], m["RW"],
                   m["Propagation"]) for m in d["Mounts"])


def anonymous(m: Json) -> bool:
    return m["Type"] == "volume" and len(m.get("Source", "")) == 64


def given_with_mount(d: Json) -> list[tuple[str, str, str]]:
    """HostConfig.Mounts: what was given with --mount. An anonymous volume is left out: the
    copy must name it to keep its data, which only --mount (or -v NAME:) can."""
    return sorted((m["Type"], m["Target"], m.get("Source", ""))
                  for m in d["HostConfig"]["Mounts"] or [] if not anonymous(m))


def volume_names(d: Json) -> list[str]:
    return sorted(m["Name"] for m in d["Mounts"] if m["Type"] == "volume")


def tmpfs_mount_options(d: Json) -> dict[str, Any]:
    return {m["Target"]: m.get("TmpfsOptions") for m in d["HostConfig"]["Mounts"] or []
            if m["Type"] == "tmpfs"}


def per_network(key: str) -> Callable[[Json], dict[str, Any]]:
    def get(d: Json) -> dict[str, Any]:
        nets = d["NetworkSettings"]["Networks"]
        if key == "Aliases":  # less each container's own short id, which the engine adds
            return {n: sorted(set(e["Aliases"] or []) - {d["Id"][:12]}) for n, e in nets.items()}
        return {n: e[key] for n, e in nets.items()}
    return get


HOST_FIELDS = [
    "PortBindings", "PublishAllPorts", "Tmpfs", "RestartPolicy", "NetworkMode", "ExtraHosts",
    "Dns", "DnsSearch", "DnsOptions", "LogConfig", "CapAdd", "CapDrop", "Devices",
    "DeviceCgroupRules", "Ulimits", "Sysctls", "Memory", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "NanoCpus", "CpuShares", "CpusetCpus", "CpusetMems", "PidsLimit",
    "OomScoreAdj", "OomKillDisable", "Init", "ShmSize", "SecurityOpt", "ReadonlyRootfs",
    "GroupAdd", "Privileged", "IpcMode", "PidMode", "UTSMode", "UsernsMode", "Runtime",
    "AutoRemove",
]
CONFIG_FIELDS = [
    "Labels", "Healthcheck", "User", "WorkingDir", "Entrypoint", "Cmd", "Hostname",
    "Domainname", "ExposedPorts", "Tty", "OpenStdin", "StopSignal", "StopTimeout", "Image",
]
FIELDS: dict[str, Callable[[Json], Any]] = {
    **{f"HostConfig.{k}": at(f"HostConfig.{k}") for k in HOST_FIELDS},
    **{f"Config.{k}": at(f"Config.{k}") for k in CONFIG_FIELDS},
    # The engine itself does not keep the order of -e options (seen rotated on one same
    # `docker create` run twice); the set of entries is what counts.
    "Config.Env": lambda d: sorted(d["Config"]["Env"] or []),
    "Image": at("Image"),
    "Path": at("Path"),
    "Args": at("Args"),
    "Mounts": mounts,
    # Each mount in the form it was given: -v entries stay in Binds, --mount in Mounts.
    "HostConfig.Binds": lambda d: sorted(d["HostConfig"]["Binds"] or []),
    "HostConfig.Mounts": given_with_mount,
    "Mounts volume names": volume_names,
    "HostConfig.Mounts tmpfs options": tmpfs_mount_options,
    "Networks": lambda d: sorted(d["NetworkSettings"]["Networks"]),
    "Networks.Aliases": per_network("Aliases"),
    "Networks.IPAMConfig": per_network("IPAMConfig"),
    "Networks.IPAddress": per_network("IPAddress"),
}


def differences(old: Json, new: Json, expected: dict[str, Any] | None = None) -> list[str]:
    """Fields whose values differ; `expected` gives the new value where it should change."""
    expected = expected or {}
    out = []
    for label, get in FIELDS.items():
        want = expected[label] if label in expected else get(old)
        if get(new) != want:
            out.append(f"{label}: {want!r} != {get(new)!r}")
    return out
