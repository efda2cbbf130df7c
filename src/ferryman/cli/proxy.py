"""`ferryman proxy-upstream`: the nginx upstream file of each proxied service, written for
the container that runs now, so the operator's location can name it before the first
blue-green release. `ferryman canary ENV promote|abort`: a word to a running canary."""

from __future__ import annotations

import typer

from ..checks.runner import stamp_now
from ..errors import EXIT_BAD_INPUT
from ..flows import bluegreen as bg
from ..flows.lock import env_lock
from ..hosts import open_pool
from ..nginx import commands as nc
from ..steps import Outcome, run_steps
from .common import err_console, fail, load, make_bus, run_logged


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


def canary(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment where a release runs a canary."),
    action: str = typer.Argument(..., metavar="promote|abort",
                                 help="promote: 100% to the new side now; abort: all back to "
                                      "the old side, the release undone."),
    services: list[str] = typer.Option(None, "--service", "-s", help="Only these services "
                                       "(default: every one with `proxy:`)."),
) -> None:
    """Tell a running `release --canary` to promote or abort, from another terminal."""
    if action not in ("promote", "abort"):
        raise fail(f"{action!r}: expected promote or abort", EXIT_BAD_INPUT)
    cfg = load(ctx)
    chosen = services or [n for n, s in cfg.services.items() if s.proxy is not None]
    bus, logs = make_bus(ctx, cfg, "canary", files=False)

    async def go() -> list[str]:
        async with open_pool(cfg, bus) as pool:
            await pool.resolve(env)
            told = []
            for p in pool.placements(env, chosen):
                path = bg.control_path(cfg.project, p.service)
                # Renamed into place: the release never reads half a word.
                await pool.host(env, p.host).run(nc.install(path), input=action.encode(),
                                                 timeout=30, check=True)
                told.append(f"{p.service} on {p.host}")
            return told

    for where in run_logged(go, logs):
        err_console.print(f"{action} asked of the canary of {where}: the release acts on it "
                          "within a second", highlight=False, markup=False)
