"""`ferryman logs ENV SERVICE`: a service's container logs, from every host it runs on."""

from __future__ import annotations

import sys

import typer

from ..flows import logs as flow
from ..hosts import Placement, open_pool
from .common import execute, load


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
            if env in cfg.environments and cfg.environments[env].swarm is not None:
                from ..swarm import logs as swarm_logs

                def line(stream: str, text: str) -> None:
                    out = sys.stdout if stream == "stdout" else sys.stderr
                    out.write(text + "\n")
                    out.flush()

                return await swarm_logs.logs(cfg, pool, env, service, tail or None, follow,
                                             line)
            many = len(await flow.placements(pool, env, service)) > 1

            def show(p: Placement, stream: str, line: str) -> None:
                out = sys.stdout if stream == "stdout" else sys.stderr
                out.write((f"[{p.host}] " if many else "") + line + "\n")
                out.flush()

            return await flow.logs(pool, env, service, tail or None, follow, show)

    if execute(go) != 0:
        raise typer.Exit(1)
