"""Start, reach and remove local test hosts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from .images import DEFAULT_KIND, LabError, docker, host_kind

# What a container needs to run its own dockerd here (checked on these machines; --privileged
# fails for want of one capability).
HOST_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/var/lib/docker:exec",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    # No resolver outside: a stray name lookup fails at once instead of leaving the machine.
    "--dns", "127.0.0.1",
]
LAB_LABEL = "io.ferryman.lab"


@dataclass
class LabHost:
    name: str  # the container's name on the local engine
    role: str  # test, prod...
    port: int  # sshd on 127.0.0.1
    address: str = "127.0.0.1"
    kind: str = DEFAULT_KIND  # bookworm (Docker 20.10, compose v1), trixie (26.1, v2)
    published: dict[int, int] = field(default_factory=dict)  # host port -> 127.0.0.1 port

    @property
    def ssh_address(self) -> str:
        return f"root@{self.address}:{self.port}"

    @property
    def compose(self) -> list[str]:
        """How compose is called on this host: `docker-compose` (v1) or `docker compose`."""
        return list(host_kind(self.kind).compose)


class Lab:
    """A set of test hosts sharing one SSH key and one known_hosts file under `workdir`;
    each host is of `kind` unless `start` names another for its role."""

    def __init__(self, workdir: str | Path, prefix: str | None = None,
                 kind: str = DEFAULT_KIND) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix or f"ferryman-lab-{uuid.uuid4().hex[:6]}"
        self.kind = host_kind(kind).name
        self.key_path = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.hosts: dict[str, LabHost] = {}
        self._make_key()

    def _make_key(self) -> None:
        if self.key_path.exists():
            return
        key = asyncssh.generate_private_key("ssh-ed25519", comment="ferryman-lab")
        key.write_private_key(str(self.key_path))
        key.write_public_key(str(self.key_path) + ".pub")
        os.chmod(self.key_path, 0o600)

    @property
    def public_key(self) -> str:
        return Path(str(self.key_path) + ".pub").read_text().strip()

    def start(self, roles: list[str], timeout: float = 90,
              kinds: dict[str, str] | None = None,
              publish: tuple[int, ...] = (), volumes: tuple[str, ...] = (),
              tmpfs: tuple[str, ...] = ()) -> list[LabHost]:
        """Starts a host per role; `kinds` maps a role to its kind (default: the lab's);
        `publish`: ports of each host reachable on 127.0.0.1 (LabHost.published); `volumes`:
        `docker run -v` specs for each host, `{role}` replaced by the host's role; `tmpfs`:
        folders of each host in memory."""
        chosen = {r: host_kind((kinds or {}).get(r, self.kind)).name for r in roles}
        with ThreadPoolExecutor(max_workers=len(roles) or 1) as pool:
            started = list(pool.map(
                lambda r: self._start_one(r, timeout, chosen[r], publish, volumes, tmpfs), roles))
        lines = []
        for host in started:
            self.hosts[host.role] = host
            pub = self.exec(host, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.decode()
            kind, blob = pub.split()[:2]
            lines.append(f"[{host.address}]:{host.port} {kind} {blob}\n")
        with self.known_hosts.open("a") as fh:
            fh.writelines(lines)
        return started

    def _start_one(self, role: str, timeout: float, kind: str,
                   publish: tuple[int, ...] = (), volumes: tuple[str, ...] = (),
                   tmpfs: tuple[str, ...] = ()) -> LabHost:
        name = f"{self.prefix}-{role}"
        docker("rm", "-f", name, check=False)
        extra = [f for p in publish for f in ("-p", f"127.0.0.1::{p}")]
        extra += [f for v in volumes for f in ("-v", v.replace("{role}", role))]
        extra += [f for t in tmpfs for f in ("--tmpfs", f"{t}:exec")]
        docker("run", "-d", "--name", name, "--hostname", role,
               "--label", f"{LAB_LABEL}={self.prefix}", *HOST_FLAGS, "-p", "127.0.0.1::22",
               *extra, "-e", f"AUTHORIZED_KEY={self.public_key}", host_kind(kind).image)
        ports = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Ports}}",
                                  name).stdout)
        port = int(ports["22/tcp"][0]["HostPort"])
        host = LabHost(name, role, port, kind=kind,
                       published={p: int(ports[f"{p}/tcp"][0]["HostPort"]) for p in publish})
        deadline = time.monotonic() + timeout
        while True:
            engine = docker("exec", name, "docker", "info", "--format", "{{.ServerVersion}}",
                            check=False, timeout=30)
            if engine.returncode == 0 and _port_open(port):
                return host
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "30", name, check=False).stderr.decode()
                inner = self.exec(host, ["tail", "-n", "30", "/var/log/dockerd.log"],
                                  check=False).stdout.decode()
                raise LabError(
                    f"test host {name} did not come up in {timeout:g}s:\n{logs}\n{inner}"
                )
            time.sleep(0.5)

    def exec(self, host: LabHost, argv: list[str], input: bytes | None = None,
             check: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess[bytes]:
        """Runs a command inside a test host (set-up and fault injection, not ferryman's path)."""
        flags = ["-i"] if input is not None else []
        return docker("exec", *flags, host.name, *argv, input=input, check=check, timeout=timeout)

    def sh(self, host: LabHost, script: str, check: bool = True) -> str:
        return self.exec(host, ["sh", "-c", script], check=check).stdout.decode()

    def load_image(self, host: LabHost, image: str) -> None:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "exec", "-i", host.name, "docker", "load"],
                              stdin=save.stdout, capture_output=True)
        save.wait()
        if save.returncode != 0 or load.returncode != 0:
            raise LabError(f"loading {image} into {host.name} failed: {load.stderr.decode()}")

    def ip_address(self, host: LabHost) -> str:
        """The host's address on the local engine's bridge (reachable from its peers)."""
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return docker("inspect", "--format", fmt, host.name).stdout.decode().strip()

    def stop_host(self, host: LabHost) -> None:
        docker("stop", "-t", "1", host.name, check=False)

    def remove(self) -> None:
        names = [h.name for h in self.hosts.values()]
        listed = docker("ps", "-aq", "--filter", f"label={LAB_LABEL}={self.prefix}", check=False)
        ids = listed.stdout.decode().split()
        if names or ids:
            docker("rm", "-f", "-v", *sorted(set(names + ids)), check=False)
        self.hosts.clear()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False
