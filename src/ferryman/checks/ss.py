"""`ss -tlnp` output: who listens on which TCP port of the host."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DOCKER_PROXY = "docker-proxy"
_USER = re.compile(r'\("([^"]+)",pid=(\d+)')


@dataclass
class Listener:
    address: str  # 0.0.0.0, ::, *, 127.0.0.1...
    port: int
    processes: list[tuple[str, int]] = field(default_factory=list)  # (name, pid)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.processes))

    @property
    def docker(self) -> bool:
        return bool(self.processes) and all(n == DOCKER_PROXY for n in self.names)

    @property
    def who(self) -> str:
        """`nginx (pid 73691)`; `a process ferryman cannot see` without root."""
        if not self.processes:
            return "a process ferryman cannot name (ss shows processes only to root)"
        name, pid = self.processes[0]
        return f"{name} (pid {pid})"

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def _split_endpoint(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]").split("%", 1)[0]
    return host, int(port)


def parse_listeners(stdout: str) -> list[Listener]:
    out = []
    for line in stdout.splitlines():
        fields = line.split()
        if not fields or fields[0] == "State" or fields[0] == "Netid":
            continue
        if not fields[0][0].isdigit():
            fields = fields[1:]  # the State column (LISTEN)
        if len(fields) < 4:
            continue
        local = _split_endpoint(fields[2])
        if local is None:
            continue
        procs = [(m.group(1), int(m.group(2))) for m in _USER.finditer(" ".join(fields[4:]))]
        out.append(Listener(local[0], local[1], procs))
    return out


def on_port(listeners: list[Listener], port: int) -> list[Listener]:
    return [x for x in listeners if x.port == port]


def others_on(listeners: list[Listener], port: int) -> list[Listener]:
    """Listeners on `port` that are not Docker's own proxy."""
    return [x for x in on_port(listeners, port) if not x.docker]
