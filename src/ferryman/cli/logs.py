"""`ferryman logs ENV SERVICE`: a service's container logs, from every host it runs on."""

from __future__ import annotations

import asyncio
import math
import sys

import typer

from ..docker import commands as dc
from ..errors import PreconditionFailed
from ..hosts import HostPool, Placement, open_pool
from .common import execute, load


async def _copy(pool: HostPool, p: Placement, tail: int | None, follow: bool,
                prefix: str) -> int:
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
            sys.stdout.write(prefix + line.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
    if pending:
        sys.stdout.write(prefix + pending.decode("utf-8", "replace") + "\n")
    result = await proc.wait()
    if result.stderr:
        for line in result.stderr.splitlines():
            sys.stderr.write(prefix + line + "\n")
    if not result.ok and "No such container" in result.stderr:
        raise PreconditionFailed(f"no container {p.container} on {p.host}")
    return result.exit_status


def logs(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    service: str = typer.Argument(..., help="Service name from ferryman.yml."),
    tail: int = typer.Option(100, "--tail", "-n", help="Lines from the end (0: all)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Show a service's container logs (stdout and stderr)."""
    cfg = load(ctx)

    async def go() -> int:
        async with open_pool(cfg) as pool:
            places = pool.placements(env, [service])
            many = len(places) > 1
            codes = await asyncio.gather(*(
                _copy(pool, p, tail or None, follow, f"[{p.host}] " if many else "")
                for p in places
            ))
            return max(codes, default=0)

    if execute(go) != 0:
        raise typer.Exit(1)
