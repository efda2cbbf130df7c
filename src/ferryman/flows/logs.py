"""A service's container logs, streamed line by line from every host it runs on."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from ..docker import commands as dc
from ..docker.inspect import parse_containers
from ..errors import PreconditionFailed
from ..hosts import HostPool, Placement

# (placement, "stdout" | "stderr", line without its newline)
OnLine = Callable[[Placement, str, str], None]


async def stream(pool: HostPool, p: Placement, tail: int | None, follow: bool,
                 on_line: OnLine) -> int:
    """Hands each line of one container's log to on_line; returns docker's exit status."""
    # Following, a quiet container may print nothing for hours: no idle deadline then (a
    # host that goes away is still noticed by the SSH keepalive).
    proc = await pool.host(p.env, p.host).open(dc.container_logs(p.container, tail, follow),
                                               idle_timeout=math.inf if follow else None)
    # docker logs replays the container's stderr on its own stderr; both are the log.
    pending = b""
    while chunk := await proc.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line(p, "stdout", line.decode("utf-8", "replace"))
    if pending:
        on_line(p, "stdout", pending.decode("utf-8", "replace"))
    result = await proc.wait()
    for line in result.stderr.splitlines():
        on_line(p, "stderr", line)
    if not result.ok:  # told by docker inspect, not by the words of the error
        there = await pool.host(p.env, p.host).run(dc.inspect_containers([p.container]),
                                                   timeout=30)
        if p.container not in parse_containers(there.stdout):
            raise PreconditionFailed(f"no container {p.container} on {p.host}", host=p.host)
    return result.exit_status


async def placements(pool: HostPool, env: str, service: str) -> list[Placement]:
    """Where the service runs, its containers found (compose-named ones differ per host)."""
    await pool.resolve(env)
    return pool.placements(env, [service])


async def logs(pool: HostPool, env: str, service: str, tail: int | None, follow: bool,
               on_line: OnLine) -> int:
    """Every placement of the service at once; the worst exit status."""
    places = await placements(pool, env, service)
    codes = await asyncio.gather(*(stream(pool, p, tail, follow, on_line) for p in places))
    return max(codes, default=0)
