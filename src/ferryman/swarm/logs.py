"""`ferryman logs ENV SERVICE` on a Swarm: `docker service logs` on the manager, which
gathers every task's log from its node (each line prefixed by Swarm with the task and node)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..config import Config
from ..errors import BadInput
from ..hosts import HostPool
from .release import manager_label

OnLine = Callable[[str, str], None]  # ("stdout" | "stderr", line)


def service_logs(name: str, tail: int | None, follow: bool) -> list[str]:
    return ["docker", "service", "logs", "--timestamps", "--tail",
            str(tail) if tail else "all", *(["--follow"] if follow else []), name]


async def logs(cfg: Config, pool: HostPool, env: str, service: str, tail: int | None,
               follow: bool, on_line: OnLine) -> int:
    swarm = cfg.environments[env].swarm
    assert swarm is not None
    if service not in cfg.services:
        raise BadInput(f"unknown service {service} (ferryman.yml has: "
                       f"{', '.join(cfg.services) or 'none'})")
    label = manager_label(cfg, env)
    proc = await pool.host(env, label).open(
        service_logs(swarm.service_name(service), tail, follow),
        idle_timeout=math.inf if follow else None)
    pending = b""
    while chunk := await proc.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line("stdout", line.decode("utf-8", "replace"))
    if pending:
        on_line("stdout", pending.decode("utf-8", "replace"))
    result = await proc.wait()
    for line in result.stderr.splitlines():
        on_line("stderr", line)
    return result.exit_status
