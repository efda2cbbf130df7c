"""`ferryman release`, `rollback`, `history`, `unlock`."""

from __future__ import annotations

import typer

from ..config import Config
from ..config.schema import DURATION_EXPECTED, parse_duration
from ..errors import EXIT_BAD_INPUT, BadInput
from ..flows import history as hist
from ..flows import lock
from ..flows import release as flow
from ..flows import resume as rs
from ..flows import rollback as rb
from ..flows.bluegreen import Canary
from ..hosts import open_pool
from ..record import Image, Record
from .common import (
    ask,
    confirm,
    err_console,
    execute,
    exit_with,
    fail,
    load,
    make_bus,
    out_console,
    print_json,
    run_logged,
)


def release(
    ctx: typer.Context,
    src: str = typer.Argument(..., metavar="FROM", help="Environment whose images to take."),
    dst: str = typer.Argument(..., metavar="TO", help="Environment to release to."),
    services: list[str] = typer.Option(None, "--service", "-s", help="Only these services."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    tag: str = typer.Option(None, "--tag", help="Tag the released images with this tag on TO "
                            "(their repository, this tag): how TO's allowed_tags are met "
                            "without a registry."),
    watch: str = typer.Option(None, "--watch", help="Watch the released services this long "
                              "after the switch (15m; 0: not at all); a failure rolls back. "
                              "Default: TO's `watch`."),
    canary: str = typer.Option(None, "--canary", help="Services with `proxy:` take traffic "
                               "in these steps, percent to the new side (5,25,50,100); "
                               "a 5xx rate over the old side's aborts."),
    step: str = typer.Option("2m", "--step", help="How long each --canary step bakes."),
    allow_missing_nodes: bool = typer.Option(
        False, "--allow-missing-nodes", help="Swarm: release although some nodes that may run "
        "a service cannot be given the image (down, no SSH address); they get no task of it."),
) -> None:
    """Run on TO exactly the images that run on FROM; undo everything if anything fails."""
    cfg = load(ctx)
    window = None if watch is None else _duration("--watch", watch)
    try:
        stages = None if canary is None else Canary.parse(canary, _duration("--step", step))
    except BadInput as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    bus, logs = make_bus(ctx, cfg, "release")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            if dst in cfg.environments and cfg.environments[dst].swarm is not None:
                from ..swarm import release as swarm_release
                if tag is not None:
                    raise BadInput("--tag: a release to a Swarm is tagged with its release "
                                   "id on every node (an immutable name)")
                if stages is not None:
                    raise BadInput("--canary: a Swarm service is updated by Swarm's own "
                                   "rolling update, not through nginx")
                plan = await swarm_release.plan_swarm_release(
                    cfg, pool, src, dst, services or [], bus,
                    allow_missing_nodes=allow_missing_nodes)
            else:
                plan = await flow.plan_release(cfg, pool, src, dst, services or [], bus,
                                               tag=tag, watch=window, canary=stages)
            if not dry_run:
                what = ", ".join(f"{s.service}={plan.new_ref(s.service)}"
                                 for s in plan.sources.values())
                confirm(cfg, dst, f"release {what} from {src} to {dst}", yes)
            return (await flow.execute(cfg, pool, plan, bus, dry_run)).exit_code

    exit_with(run_logged(go, logs))


def _duration(option: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:  # pydantic's error is a ValueError
        raise fail(f"{option} {text!r}: expected {DURATION_EXPECTED}", EXIT_BAD_INPUT) from None


def rollback(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment to roll back."),
    to: str = typer.Option(None, "--to", help="The release to undo (default: the latest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Return ENV to what ran before a release (its kept containers and images)."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "rollback")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            if env in cfg.environments and cfg.environments[env].swarm is not None:
                from ..swarm import rollback as swarm_rollback
                splan = await swarm_rollback.plan_swarm_rollback(cfg, pool, env, to, bus)
                assert splan.target is not None
                if not dry_run:
                    confirm(cfg, env, f"roll back release {splan.target.id} on {env}", yes)
                return (await flow.execute(cfg, pool, splan, bus, dry_run,
                                           rolls_back=splan.target.id)).exit_code
            plan = await rb.plan_rollback(cfg, pool, env, to)
            if not dry_run and plan.restores:
                # Data goes back too: say exactly what, and ask, whatever the policy.
                err_console.print(f"rollback of {plan.target.id} on {env} will:",
                                  highlight=False)
                for n, step in enumerate(plan.steps, 1):
                    err_console.print(f"  {n}. {step.name}", highlight=False, markup=False)
                if not yes:
                    ask("restoring data asks for confirmation",
                        f"restore backup {plan.restores} on {env} and start the previous "
                        f"version of release {plan.target.id}")
            elif not dry_run:
                confirm(cfg, env, f"roll back release {plan.target.id} on {env}", yes)
            return (await flow.execute(cfg, pool, plan, bus, dry_run,
                                       rolls_back=plan.target.id)).exit_code

    exit_with(run_logged(go, logs))


def _short(image: Image | None) -> str:
    return image.short() if image else "-"


def _lifecycle(r: Record) -> list[str]:
    """The record's hooks, backup, tag and watch, one line each."""
    lines = [f"{h.get('when')} {h.get('service')} on {h.get('host')}: "
             f"{' '.join(map(str, h.get('run') or []))}"
             + (" (changes data)" if h.get("changes_data") else "") for h in r.hooks]
    if r.backup:
        lines.append(f"backup before the hooks: {r.backup}")
    if r.tag:
        lines.append(f"tagged {r.tag}")
    if r.watch:
        w = r.watch
        lines.append(f"watch {w.get('window', 0):g}s: {w.get('result')}"
                     + (f" after {w['after']:g}s" if w.get("after") is not None else "")
                     + (f" ({w['detail']})" if w.get("detail") else ""))
    lines += [f"{p.get('path')} made to name the new image" for p in r.persisted]
    return lines


def history(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Releases and rollbacks recorded on ENV, newest last."""
    cfg = load(ctx)

    async def go() -> hist.History:
        async with open_pool(cfg) as pool:
            return await hist.read_history(cfg, pool, env)

    found = execute(go)
    for why in found.unreadable:
        err_console.print(f"warning: a history record could not be read, {why}",
                          style="yellow", highlight=False, markup=False)
    if json_out:
        print_json([r.model_dump(by_alias=True, exclude_none=True) for r in found.records])
        return
    if not found.records:
        err_console.print(f"no release recorded on {env}", highlight=False)
    for r in found.records:
        colour = "green" if r.result == "ok" else "red"
        undoes = f" (undoes {r.rolls_back})" if r.rolls_back else ""
        when = r.when.replace("T", " ")[:19]
        out_console.print(
            f"[bold]{r.id}[/] {r.kind} {r.from_env} -> {r.to}  {when}  {r.who}  "
            f"[{colour}]{r.result}[/]{undoes}", highlight=False)
        if r.error:
            out_console.print(f"    {r.failed_step}: {r.error}", style="red",
                              highlight=False, markup=False)
        for svc in r.services:
            out_console.print(
                f"    {svc.service}@{svc.host} {svc.mode}: {_short(svc.old)} -> "
                f"{_short(svc.new)}", highlight=False, markup=False)
        for line in _lifecycle(r):
            out_console.print(f"    {line}", highlight=False, markup=False)


def abort(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment with an unfinished flow."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Undo a flow that ferryman did not finish (it died midway), from its journal."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "abort")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            plan = await rs.plan_abort(cfg, pool, env)
            if not dry_run:
                confirm(cfg, env, f"undo {plan.journal.describe()}", yes)
            return (await rs.execute_abort(cfg, pool, plan, bus, dry_run)).exit_code

    exit_with(run_logged(go, logs))


def resume(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment with an unfinished release."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Finish a release that ferryman did not finish (it died midway), from its journal."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "resume")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            if not dry_run:
                confirm(cfg, env, f"finish the unfinished release on {env}", yes)
            return (await rs.resume(cfg, pool, env, bus, dry_run)).exit_code

    exit_with(run_logged(go, logs))


def unlock(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment whose lock to break."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Break a stale lock left by a release that died."""
    cfg: Config = load(ctx)

    async def go() -> str:
        async with open_pool(cfg) as pool:
            owner = await lock.holder(cfg, pool, env)
            if owner is None:
                raise BadInput(f"{env} is not locked")
            what = f"{owner.owner} since {owner.since} ({owner.command})"
            if not yes:
                ask("breaking a lock asks for confirmation", f"break the lock of {what}")
            await lock.break_stale(cfg, pool, env)
            return what

    err_console.print(f"lock of {execute(go)} broken", highlight=False)
