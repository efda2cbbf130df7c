"""The dashboard's buttons, as data: what each one changes, its plan (the same dry run the CLI
prints) and its job (the same flow the CLI runs). Input is checked here, before anything
connects: an unknown environment, service or id is a BadInput naming it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..checks import apply_fixes, examine
from ..checks.runner import stamp_now
from ..config import Config
from ..data import archive as ar
from ..errors import BadInput
from ..events import EventBus
from ..flows import data as data_flow
from ..flows import release as release_flow
from ..flows import rollback as rollback_flow
from ..hosts import HostPool
from ..state import ID_PATTERN
from .runs import Job

Plan = Callable[[Config, HostPool, EventBus], Awaitable[Any]]


@dataclass
class Action:
    flow: str  # the run's flow name: release, rollback, backup...
    title: str
    envs: list[str]  # the environments it changes (their lock, their permission)
    params: dict[str, Any]
    job: Job
    plan: Plan | None = None  # a dry run; None: the action changes nothing worth planning
    notes: list[str] = field(default_factory=list)
    # Environments with `confirm: true` want their name typed, unless the action only reads
    # (verify, drill: nothing live is touched).
    asks: bool = True


def _env(cfg: Config, name: str, what: str = "environment") -> str:
    if name not in cfg.environments:
        known = ", ".join(cfg.environments) or "none"
        raise BadInput(f"unknown {what} '{name}' (ferryman.yml has: {known})")
    return name


def _services(cfg: Config, names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in cfg.services]
    if unknown:
        known = ", ".join(cfg.services) or "none"
        raise BadInput(f"unknown service {', '.join(unknown)} (ferryman.yml has: {known})")
    return names


def _id(value: str, what: str) -> str:
    if not ID_PATTERN.fullmatch(value) and not ar.ID_PATTERN.fullmatch(value):
        raise BadInput(f"'{value}' is not a {what} id")
    return value


def release(cfg: Config, src: str, dst: str, services: list[str]) -> Action:
    _env(cfg, src, "environment FROM")
    _env(cfg, dst, "environment TO")
    if src == dst:
        raise BadInput(f"FROM and TO are both '{src}'")
    _services(cfg, services)

    async def run(cfg: Config, pool: HostPool, bus: EventBus, dry_run: bool) -> int:
        plan = await release_flow.plan_release(cfg, pool, src, dst, services, bus)
        return (await release_flow.execute(cfg, pool, plan, bus, dry_run)).exit_code

    which = ", ".join(services) if services else "all services"
    return Action("release", f"release {src} → {dst} ({which})", [dst],
                  {"from": src, "to": dst, "services": services},
                  job=lambda c, p, b: run(c, p, b, False), plan=lambda c, p, b: run(c, p, b, True))


def rollback(cfg: Config, env: str, to: str | None) -> Action:
    _env(cfg, env)
    if to:
        _id(to, "release")

    async def run(cfg: Config, pool: HostPool, bus: EventBus, dry_run: bool) -> int:
        plan = await rollback_flow.plan_rollback(cfg, pool, env, to)
        return (await release_flow.execute(cfg, pool, plan, bus, dry_run,
                                           rolls_back=plan.target.id)).exit_code

    return Action("rollback", f"roll back {env}" + (f" to before {to}" if to else ""), [env],
                  {"env": env, "to": to}, job=lambda c, p, b: run(c, p, b, False),
                  plan=lambda c, p, b: run(c, p, b, True))


def _needs_data(cfg: Config) -> None:
    if cfg.data is None:
        raise BadInput("ferryman.yml has no data section: nothing to back up or restore")


def backup(cfg: Config, env: str) -> Action:
    _env(cfg, env)
    _needs_data(cfg)

    async def run(cfg: Config, pool: HostPool, bus: EventBus, dry_run: bool) -> int:
        outcome, m = await data_flow.backup(cfg, pool, env, bus, dry_run)
        if outcome.ok and m is not None and not dry_run:
            bus.info(f"backup {m.id} on {m.host}: {len(m.items)} item(s), {m.total_bytes} bytes")
        return outcome.exit_code

    return Action("backup", f"back up {env}", [env], {"env": env},
                  job=lambda c, p, b: run(c, p, b, False), plan=lambda c, p, b: run(c, p, b, True),
                  notes=["the business containers are stopped during the snapshot"])


def restore(cfg: Config, env: str, bid: str) -> Action:
    _env(cfg, env)
    _needs_data(cfg)
    _id(bid, "backup")

    async def run(cfg: Config, pool: HostPool, bus: EventBus, dry_run: bool) -> int:
        outcome, _ = await data_flow.restore(cfg, pool, env, bid, bus, dry_run)
        return outcome.exit_code

    return Action("restore", f"restore backup {bid} on {env}", [env], {"env": env, "id": bid},
                  job=lambda c, p, b: run(c, p, b, False), plan=lambda c, p, b: run(c, p, b, True),
                  notes=[f"the data of {env} is replaced; a safety backup is taken first"])


def sync(cfg: Config, src: str, dst: str) -> Action:
    _env(cfg, src, "environment FROM")
    _env(cfg, dst, "environment TO")
    _needs_data(cfg)
    if src == dst:
        raise BadInput(f"FROM and TO are both '{src}'")

    async def run(cfg: Config, pool: HostPool, bus: EventBus, dry_run: bool) -> int:
        outcome, _ = await data_flow.sync(cfg, pool, src, dst, bus, dry_run)
        return outcome.exit_code

    # FROM is stopped for its snapshot too: both environments are changed.
    return Action("sync-data", f"sync data {src} → {dst}", [src, dst], {"from": src, "to": dst},
                  job=lambda c, p, b: run(c, p, b, False), plan=lambda c, p, b: run(c, p, b, True),
                  notes=[f"the data of {dst} is replaced; a safety backup is taken first"])


def verify(cfg: Config, env: str, bid: str, drill: bool) -> Action:
    _env(cfg, env)
    _needs_data(cfg)
    _id(bid, "backup")

    async def job(cfg: Config, pool: HostPool, bus: EventBus) -> int:
        s = data_flow.site(cfg, pool, env)
        for said in await data_flow.checked(s, await data_flow.read_manifest(s, bid), drill):
            bus.info(f"{bid}: {said}")
        return 0

    kind = "drill" if drill else "verify"
    return Action(f"{kind}", f"{kind} backup {bid} on {env}", [env],
                  {"env": env, "id": bid, "drill": drill}, job=job, asks=False)


def doctor_fix(cfg: Config, env: str) -> Action:
    _env(cfg, env)

    async def plan(cfg: Config, pool: HostPool, bus: EventBus) -> int:
        report = await examine(cfg, pool, [env])
        for n, f in enumerate(report.pending, 1):
            bus.emit("step_plan", n=n, m=len(report.pending),
                     name=f"fix {f.check} ({f.subject}) on {f.env}/{f.host}",
                     params={"fix": f.fix.text if f.fix else ""}, host=f.host,
                     commands=f.fix.commands if f.fix else [])
        if not report.pending:
            bus.info(f"no safe fix to apply on {env}")
        return 0

    async def job(cfg: Config, pool: HostPool, bus: EventBus) -> int:
        stamp = stamp_now()
        report = await examine(cfg, pool, [env], stamp=stamp)
        if not report.pending:
            bus.info(f"no safe fix to apply on {env}")
            return 0
        report = await apply_fixes(cfg, pool, report, bus, stamp=stamp)
        failed = [r for r in report.fixes if r.error]
        for r in report.fixes:
            bus.info(f"{r.finding.summary}: " + (r.error or r.result or "applied"))
        return 1 if failed else 0

    return Action("doctor-fix", f"apply the safe fixes on {env}", [env], {"env": env},
                  job=job, plan=plan)
