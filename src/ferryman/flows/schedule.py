"""One pass of the schedules: run every job that is due, under its environment's lock.

A scheduled backup is one flow: stop, snapshot, start, verify (sha256 read back), copy
off-site (verified there), then retention at both places, which never removes the newest
verified backup and does not count one whose check failed. Each job's run is recorded in
schedules.jsonl on the environment's first host (the history every operator sees) and in
the pass's log. Two passes never run one job twice: the lock is taken first, and the record
is read again under it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import Config
from ..data import archive as ar
from ..data import restic as rc
from ..errors import FerrymanError, LockHeld, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool
from ..journal import Journal
from ..locking import EnvLock, LockOwner
from ..schedule import due as sd
from ..state import ABSENT, append_line, now_iso, operator, read_records
from ..steps import Outcome, Step, run_steps
from .data import offsite as off
from .data import restic, snapshot
from .data.plan import DataState, lines
from .data.site import Site, located_site
from .data.store import checked, list_backups, prune, record_check
from .data.verify import digest_argv, verify_archives


class AlreadySettled(FerrymanError):
    """Another pass ran this job for this fire time while this one waited."""

    exit_code = 0


@dataclass
class JobRun:
    due: sd.Due
    result: str  # ok | failed | skipped | not due | planned
    said: str = ""
    id: str = ""
    exit_code: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"env": self.due.env, "job": self.due.job, "cron": self.due.when,
                "due": self.due.due.isoformat(), "result": self.result, "said": self.said,
                "id": self.id, "missed": len(self.due.missed)}


async def read_runs(s: Site) -> list[sd.Run]:
    res = await s.host.run(read_records(s.cfg.project, 2000, sd.FILE), timeout=30)
    if res.exit_status == ABSENT:
        return []
    return sd.parse_runs(res.stdout)


async def record(s: Site, run: sd.Run) -> None:
    await s.host.run(append_line(s.cfg.project, sd.FILE, run.to_json()), timeout=30,
                     check=True)


def _verify_step(s: Site, state: DataState) -> Step:
    """The backup just written, read back from disk: its check is recorded beside it."""

    async def run() -> str:
        m = state.snapshot
        assert m is not None
        try:
            said = await verify_archives(s, m)
        except Exception as exc:
            await record_check(s, m.id, "verify", False, str(exc))
            raise
        await record_check(s, m.id, "verify", True, said)
        return said

    return Step(f"verify the new backup on {s.label}", run, host=None,
                commands=[f"{s.label}: sha256 of each archive, as the manifest says"])


def _prune_step(s: Site, vault: off.AnyVault | None, bus: EventBus) -> Step:
    async def run() -> str:
        gone = await prune(s, bus)
        said = f"{len(gone)} backup(s) beyond retention removed on {s.label}"
        if vault is not None:
            said += f"; {len(await off.prune_copies(vault, bus))} off-site on {vault.label}"
        return said

    where = [s.label, *([vault.label] if vault else [])]
    return Step(f"retention on {', '.join(where)}", run, host=s.label,
                commands=[f"{s.label}: rm -rf -- <backups beyond data.keep, never the newest "
                          "verified>"])


def _after_backup(step: Step, problems: list[str], bus: EventBus) -> Step:
    """A step that runs once the backup exists (verify, copy off-site, retention): its
    failure must not undo the backup (a damaged one stays, flagged by its check). It cleans
    up after itself, is said, and fails the job without failing the flow."""
    run, undo = step.run, step.undo

    async def guarded() -> str:
        try:
            return str(await run())
        except Exception as exc:
            if undo is not None:
                try:
                    await undo()
                except Exception as again:
                    problems.append(f"{step.name} (undo): {again}")
            problems.append(f"{step.name}: {exc}")
            bus.warn(f"{step.name} failed; the backup stays: {exc}")
            return f"FAILED (the backup stays): {exc}"

    step.run, step.undo_if_failed = guarded, False
    return step


async def _backup_steps(cfg: Config, pool: HostPool, s: Site, d: sd.Due, bus: EventBus,
                        problems: list[str]) -> tuple[list[Step], str]:
    bid = ar.backup_id("b")
    if s.data.restic is not None:  # the repository is the copy kept away; restic prunes it
        r = restic.config(s)
        return restic.backup_steps(s, r, bid, await restic.plan_paths(s), []), bid
    p = await snapshot.plan(s, bid, "backup")
    state = DataState()
    after = [_verify_step(s, state)]
    vault = None
    if cfg.schedules[s.env].offsite:
        vault = off.vault(cfg, pool, s.env)

        def verified() -> ar.Manifest | None:
            if problems:  # a backup that failed its check is not copied
                raise RuntimeError("not copied: the backup failed its check")
            return state.snapshot

        after.append(off.copy_step(s, vault, bid, [i.archive for i in p.items], verified,
                                   bus))
    after.append(_prune_step(s, vault, bus))
    return [*snapshot.backup_steps(s, p, state),
            *(_after_backup(step, problems, bus) for step in after)], bid


async def _check_steps(cfg: Config, pool: HostPool, s: Site, d: sd.Due,
                       bus: EventBus) -> tuple[list[Step], str]:
    """verify / drill the newest backup (and its off-site copy's sha256, when kept)."""
    if s.data.restic is not None:
        async def check() -> str:
            return await restic.verify(s)

        snaps = await restic.snapshots(s)
        return [Step(f"restic check for {s.env}", check,
                     commands=lines([rc.check(s.data.restic)]))], \
            snaps[-1].bid if snaps else ""
    made = [m for m in await list_backups(s) if m.kind == "backup"]
    if not made:
        raise PreconditionFailed(f"no backup on {s.label} to {d.job}")
    m = made[-1]
    vault = off.vault(cfg, pool, s.env) if cfg.data and cfg.data.offsite else None

    async def run() -> str:
        said = await checked(s, m, d.job == "drill")
        if vault is not None:
            copies = {c.id for c in await off.list_copies(vault)}
            said.append(await off.verify_copy(vault, m) if m.id in copies
                        else f"no off-site copy of {m.id} on {vault.label}")
        return "; ".join(said)

    step = Step(f"{d.job} backup {m.id} on {s.label}", run, host=None,
                commands=lines([digest_argv(s, m)]))
    return [step], m.id


async def run_job(cfg: Config, pool: HostPool, d: sd.Due, bus: EventBus,
                  dry_run: bool = False) -> JobRun:
    s = await located_site(cfg, pool, d.env)
    started = now_iso()
    problems: list[str] = []
    try:
        if d.job == "backup":
            steps, bid = await _backup_steps(cfg, pool, s, d, bus, problems)
        else:
            steps, bid = await _check_steps(cfg, pool, s, d, bus)
    except FerrymanError as exc:
        said = str(exc)
        if dry_run:  # e.g. a drill of the backup this very pass would make first
            return JobRun(d, "planned", f"cannot be planned before the run: {said}")
        if not dry_run:
            await record(s, sd.Run(d.env, d.job, d.due.isoformat(), started, "failed",
                                   now_iso(), missed=len(d.missed), said=said, who=operator()))
        return JobRun(d, "failed", said, exit_code=exc.exit_code)

    async def recheck() -> None:
        if sd.already_settled(await read_runs(s), d.env, d.job, d.due):
            raise AlreadySettled(f"{d.env} {d.job} for {d.due:%Y-%m-%d %H:%M} UTC was run by "
                                 "another pass meanwhile")

    def result(outcome: Outcome) -> tuple[str, str]:
        if outcome.ok and problems:
            return "failed", "; ".join(problems)
        return ("ok" if outcome.ok else "failed"), _summary(outcome)

    async def finish(outcome: Outcome) -> None:
        said = result(outcome)
        await record(s, sd.Run(d.env, d.job, d.due.isoformat(), started, said[0], now_iso(),
                               bid, len(d.missed), said[1], operator()))

    command = f"schedule {d.job} {d.env} ({bid})"
    owner = LockOwner.mine(command)
    lock = EnvLock(s.env, s.label, s.host, cfg.project, owner)
    journal = Journal(bus.flow, bid, s.env, cfg.project, owner.owner, owner.command,
                      context={"env": d.env, "job": d.job, "id": bid},
                      hosts=[(s.label, s.host)])
    outcome = await run_steps(bus, steps, {"env": d.env, "job": d.job, "id": bid,
                                           "due": d.due.isoformat()},
                              locks=[lock], journal=journal, dry_run=dry_run,
                              after_lock=recheck, finish=finish)
    if dry_run:
        return JobRun(d, "planned", id=bid)
    if isinstance(outcome.exception, AlreadySettled):
        return JobRun(d, "not due", str(outcome.exception), bid)
    if isinstance(outcome.exception, LockHeld):
        said = f"skipped: {outcome.exception}"
        await record(s, sd.Run(d.env, d.job, d.due.isoformat(), started, "skipped",
                               now_iso(), bid, len(d.missed), said, operator()))
        return JobRun(d, "skipped", said, bid)
    ended, said = result(outcome)
    return JobRun(d, ended, said, bid, outcome.exit_code or (1 if problems else 0))


def _summary(outcome: Outcome) -> str:
    if outcome.ok:
        return "; ".join(str(v) for v in outcome.results.values() if v)[-2000:]
    return f"{outcome.failed_step}: {outcome.error}"


async def due_jobs(cfg: Config, pool: HostPool, now: datetime | None = None,
                   envs: list[str] | None = None,
                   unread: dict[str, str] | None = None) -> list[sd.Due]:
    """Each job of each environment, due or not. An environment whose records cannot be
    read (its host is down) is left out, and said in `unread` (env -> why)."""
    now = now or datetime.now(UTC)
    out = []
    for env, sched in cfg.schedules.items():
        if envs and env not in envs:
            continue
        try:
            runs = await read_runs(await located_site(cfg, pool, env))
        except FerrymanError as exc:
            if unread is None:
                raise
            unread[env] = str(exc)
            continue
        out.extend(sd.due(env, job, when, runs, now) for job, when in sched.jobs().items())
    return out


async def run_pass(cfg: Config, pool: HostPool, bus: EventBus, now: datetime | None = None,
                   envs: list[str] | None = None, dry_run: bool = False,
                   on_job: Callable[[JobRun], None] | None = None) -> list[JobRun]:
    """Runs what is due, one job at a time: backups first, so a drill checks the newest.
    An environment that cannot be reached fails its jobs of this pass, not the others'."""
    order = {"backup": 0, "verify": 1, "drill": 2}
    out = []
    unread: dict[str, str] = {}
    now = now or datetime.now(UTC)
    found = await due_jobs(cfg, pool, now, envs, unread)
    for env, why in unread.items():
        bus.warn(f"schedule: {env}: its schedule records cannot be read: {why}", env=env)
        for job, when in cfg.schedules[env].jobs().items():
            d = sd.Due(env, job, when, now, True)
            out.append(JobRun(d, "failed", why, exit_code=3))
    for d in sorted(found, key=lambda d: order[d.job]):
        if not d.run:
            out.append(JobRun(d, "not due", d.describe()))
            continue
        if d.missed:
            bus.warn(d.missed_text(), env=d.env, job=d.job, missed=len(d.missed))
        bus.info(f"schedule: {d.describe()}: running {d.job}", env=d.env, job=d.job)
        job = await run_job(cfg, pool, d, bus, dry_run)
        bus.emit("schedule", **job.to_dict())
        out.append(job)
        if on_job:
            on_job(job)
    return out


def runs_json(runs: list[sd.Run]) -> str:
    return json.dumps([vars(r) for r in runs], ensure_ascii=False)
