"""`ferryman proxy-upstream`: the nginx upstream file of each proxied service, written for
the container that runs now, so the operator's location can name it before the first
blue-green release."""

from __future__ import annotations

import typer

from ..checks.runner import stamp_now
from ..flows import bluegreen as bg
from ..flows.lock import env_lock
from ..hosts import open_pool
from ..steps import Outcome, run_steps
from .common import load, make_bus, run_logged


def proxy_upstream(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    services: list[str] = typer.Argument(None, help="Services (default: every one with "
                                         "`proxy:`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
) -> None:
    """Write each proxied service's nginx upstream for its running container, check, reload."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "proxy-upstream", files=not dry_run)

    async def go() -> Outcome:
        async with open_pool(cfg, bus) as pool:
            steps = await bg.setup_steps(cfg, pool, env, services or [], stamp_now())
            held = env_lock(cfg, pool, env, f"proxy-upstream {env}")
            return await run_steps(bus, steps, {"env": env}, locks=[held], dry_run=dry_run)

    outcome = run_logged(go, logs)
    if not outcome.ok:
        raise typer.Exit(outcome.exit_code)
