"""`ferryman abort ENV` and `ferryman resume ENV`: end a flow that ferryman did not finish.

Both start from the journal the flow left on the environment's first host. Abort undoes every
step that began, newest first, from the undo data the journal holds (undo.py), and records the
release as aborted. Resume (releases) undoes the step that was cut midway, plans the release
again with the same id and FROM's same images, and runs what remains: services already switched
are kept, their health checked again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Config
from ..errors import BadInput, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool
from ..journal import Journal, read_journal
from ..locking import EnvLock
from ..record import Record, ServiceChange
from ..state import now_iso, operator
from ..steps import Outcome, Step, run_steps

# The undos a Swarm release journals, for `ferryman abort` in another process.
from ..swarm import release as _swarm_release  # noqa: F401
from ..undo import UndoContext, run_undo
from . import bluegreen as bg
from . import recreate as rc
from .history import write_record
from .lock import env_lock
from .release import Plan, execute, plan_release


@dataclass
class AbortPlan:
    journal: Journal
    lock: EnvLock  # the lock of the environment whose journal names the flow
    steps: list[Step] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)  # steps that recorded no undo
    others: list[EnvLock] = field(default_factory=list)  # sync-data: FROM's lock too

    @property
    def locks(self) -> list[EnvLock]:
        return [*self.others, self.lock]


def _other_envs(journal: Journal) -> list[str]:
    """The other environments the flow locked and journalled on (sync-data: FROM)."""
    src = journal.context.get("from")
    return [src] if (journal.flow == "sync-data" and src and src != journal.env) else []


async def find_journal(cfg: Config, pool: HostPool, env: str, verb: str,
                       lock: EnvLock | None = None) -> tuple[EnvLock, Journal]:
    lock = lock or env_lock(cfg, pool, env, f"{verb} {env}")
    journal = await read_journal(lock.host, cfg.project, lock.label)
    if journal is None:
        raise BadInput(f"nothing to {verb} on {env}: no unfinished flow is recorded on "
                       f"{lock.label}", hint=f"ferryman history {env}")
    journal.hosts = [(lock.label, lock.host)]
    return lock, journal


def _undo_step(ctx: UndoContext, entry_name: str, host: str | None, data: dict) -> Step:
    async def run() -> str:
        result = await run_undo(ctx, data)
        return result if isinstance(result, str) else "undone"

    shown = {k: v for k, v in data.items() if k != "kind"}
    return Step(f"undo {entry_name}", run, params=shown, host=host,
                commands=[f"undo '{data['kind']}' on {host}"])


async def plan_abort(cfg: Config, pool: HostPool, env: str) -> AbortPlan:
    lock, journal = await find_journal(cfg, pool, env, "abort")
    plan = AbortPlan(journal, lock, others=[
        env_lock(cfg, pool, e, lock.owner.command) for e in _other_envs(journal)])
    journal.hosts += [(o.label, o.host) for o in plan.others]
    ctx = UndoContext(cfg, pool, journal.env)
    for e in reversed(journal.entries):
        if e.undo is not None:
            plan.steps.append(_undo_step(ctx, e.name, e.host, e.undo))
        elif e.host:
            plan.untouched.append(e.name)
    return plan


def _aborted_record(j: Journal, outcome: Outcome) -> Record:
    ctx = j.context
    changes = [ServiceChange.model_validate(c) for c in ctx.get("changes", [])]
    return Record(id=j.rid, kind="rollback" if j.flow == "rollback" else "release",
                  from_env=ctx.get("from", j.env), to=j.env, who=operator(), when=now_iso(),
                  duration=round(outcome.duration, 1),
                  result="aborted" if outcome.ok else "failed", services=changes,
                  rolls_back=ctx.get("rolls_back"),
                  error=None if outcome.ok else outcome.error,
                  failed_step=j.reached, undone=outcome.undone,
                  undo_failed=outcome.undo_failed)


async def execute_abort(cfg: Config, pool: HostPool, plan: AbortPlan, bus: EventBus,
                        dry_run: bool = False) -> Outcome:
    j = plan.journal
    bus.info(f"aborting {j.describe()}")
    for name in plan.untouched:
        bus.info(f"{name}: nothing to undo")

    async def finish(outcome: Outcome) -> None:
        if j.flow in ("release", "rollback"):
            await write_record(cfg, pool, j.env, _aborted_record(j, outcome), bus)
        if outcome.ok:
            await j.remove()
        else:
            await j.mark("undo failed", outcome.undo_failed)

    async def unchanged() -> None:
        # Read before the lock was taken: it must still be the same journal now.
        now = await read_journal(plan.lock.host, cfg.project, plan.lock.label)
        if now is None or now.to_dict() != j.to_dict():
            raise PreconditionFailed(f"the unfinished {j.flow} {j.rid} on {j.env} changed or "
                                     "ended while the abort was being planned",
                                     host=plan.lock.label, hint=f"ferryman abort {j.env} again")

    return await run_steps(bus, plan.steps, {"env": j.env, "flow": j.flow, "id": j.rid},
                           locks=plan.locks, dry_run=dry_run, after_lock=unchanged,
                           finish=finish)


async def rerun(cfg: Config, pool: HostPool, env: str, bus: EventBus,
                dry_run: bool = False) -> Outcome:
    """Resume of a data flow: a half-applied restore cannot be finished from where it
    stopped (a new safety backup would hold half the new data), so what it did is undone
    and the flow runs again from the start, with the same inputs."""
    from .data import apply as data_apply
    from .data import restic as data_restic
    from .data import snapshot as data_snapshot
    from .data import sync as data_sync

    plan = await plan_abort(cfg, pool, env)
    j = plan.journal
    ctx = j.context
    flows = {"restore": lambda: data_apply.restore(cfg, pool, j.env, ctx["id"], bus, dry_run),
             "sync-data": lambda: data_sync.sync(cfg, pool, ctx["from"], j.env, bus, dry_run,
                                                 bool(ctx.get("mask"))),
             "backup": lambda: (data_restic.backup if cfg.data and cfg.data.restic
                                else data_snapshot.backup)(cfg, pool, j.env, bus, dry_run)}
    again = flows.get(j.flow)
    if again is None:
        raise BadInput(f"{env} has {j.describe()}: it cannot be resumed",
                       hint=f"ferryman abort {env} undoes it")
    undone = await execute_abort(cfg, pool, plan, bus, dry_run)
    if not undone.ok:
        return undone
    bus.info(f"{j.flow} of {env}: what the interrupted run did is undone; running it again")
    outcome, _ = await again()
    return outcome


async def resume(cfg: Config, pool: HostPool, env: str, bus: EventBus,
                 dry_run: bool = False) -> Outcome:
    lock = env_lock(cfg, pool, env, f"resume {env}")
    if not dry_run:
        await lock.take()  # the journal is read, and acted on, under the lock
    try:
        lock, journal = await find_journal(cfg, pool, env, "resume", lock)
        if journal.flow != "release":
            await lock.give_back()
            return await rerun(cfg, pool, env, bus, dry_run)
        if cfg.environments[env].swarm is not None:
            raise BadInput(f"a release to the Swarm {env} is not resumed",
                           hint=f"ferryman abort {env} (it undoes what the release did), then "
                                "release again")
        ctx = journal.context
        bus.info(f"resuming {journal.describe()}")
        cut = [e for e in journal.entries if e.status == "started" and e.undo is not None]
        if not dry_run:
            for e in cut:  # the step that was running when ferryman died: back to its start
                bus.info(f"undoing the interrupted step {e.name}")
                await run_undo(UndoContext(cfg, pool, env), e.undo)
        plan = await plan_release(cfg, pool, ctx["from"], env, ctx.get("services") or [], bus,
                                  rid=journal.rid, lock=lock, tag=ctx.get("tag"))
        moved = [n for n, s in plan.sources.items()
                 if ctx.get("images", {}).get(n) not in (None, s.facts.image_id)]
        if moved:
            raise PreconditionFailed(
                f"{ctx['from']} now runs other images for {', '.join(moved)} than the "
                f"interrupted release {journal.rid} carried",
                hint=f"ferryman abort {env}, then release again")
        _carry_switched(cfg, pool, plan, journal)
    except BaseException:
        await lock.give_back()
        raise
    again = Journal("release", journal.rid, env, cfg.project, lock.owner.owner,
                    lock.owner.command, resumes=True)
    return await execute(cfg, pool, plan, bus, dry_run, journal=again)


def _carry_switched(cfg: Config, pool: HostPool, plan: Plan, journal: Journal) -> None:
    """Services the interrupted run had already switched plan as `unchanged` now: keep what
    the journal says of them (what ran before, the kept container) and check their health."""
    before = {(c["service"], c["host"]): ServiceChange.model_validate(c)
              for c in journal.context.get("changes", [])}
    ctx = UndoContext(cfg, pool, plan.env)
    for i, change in enumerate(plan.changes):
        was = before.get((change.service, change.host))
        if change.mode != "unchanged" or was is None or was.mode == "unchanged":
            continue
        plan.changes[i] = was
        plan.notes.append(f"{change.service} on {change.host} was switched before the "
                          "interruption: its health is checked again")
        health = cfg.services[change.service].health
        t = rc.Target(change.service, change.host, pool.host(plan.env, change.host),
                      change.container, bg.side_health(health, was.port) if was.port
                      else health, None, ctx)
        plan.steps.append(rc.health_step(t))
