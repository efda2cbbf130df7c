"""`ferryman restart ENV [SERVICE...]`: restart and wait for health, step by step."""

from __future__ import annotations

import typer

from ..flows import restart as flow
from ..hosts import open_pool
from .common import confirm, exit_with, load, make_bus, run_logged


def restart(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    services: list[str] = typer.Argument(None, help="Services (default: all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Restart services and wait until each is healthy again."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "restart")

    async def go() -> bool:
        async with open_pool(cfg, bus) as pool:
            steps = await flow.plan(cfg, pool, env, services or [])
            if not dry_run:
                confirm(cfg, env, f"restart {len(steps) // 2} service(s) on {env}", yes)
            outcome = await flow.execute(cfg, pool, env, services or [], steps, bus, dry_run)
            return outcome.exit_code

    exit_with(run_logged(go, logs))
