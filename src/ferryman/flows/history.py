"""The release history kept on TO's first host, and pruning what releases kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Config
from ..docker import commands as dc
from ..events import EventBus
from ..hosts import HostPool
from ..record import History as History
from ..record import Record, ServiceChange, parse_history
from ..state import ABSENT, append_record, now_iso, operator, read_records
from ..steps import Outcome
from ..transport import CommandFailed

if TYPE_CHECKING:
    from .release import FlowPlan


async def record_release(cfg: Config, pool: HostPool, plan: FlowPlan, outcome: Outcome,
                         bus: EventBus, rolls_back: str | None = None,
                         result: str | None = None) -> Record:
    record = Record(
        id=plan.rid, kind=plan.kind, from_env=plan.src_env, to=plan.env, who=operator(),
        when=now_iso(), duration=round(outcome.duration, 1),
        result=result or ("ok" if outcome.ok else "failed"), services=plan.changes,
        rolls_back=rolls_back, **plan.record_extra)
    if not outcome.ok:
        record.error, record.failed_step = outcome.error, outcome.failed_step
        record.undone, record.undo_failed = outcome.undone, outcome.undo_failed
    await write_record(cfg, pool, plan.env, record, bus)
    return record


async def write_record(cfg: Config, pool: HostPool, env: str, record: Record,
                       bus: EventBus) -> None:
    label = pool.env(env).hosts[0].label
    res = await pool.host(env, label).run(append_record(cfg.project, record.to_line()),
                                          timeout=30)
    if res.ok:
        bus.info(f"recorded {record.kind} {record.id} on {label}")
    else:
        bus.warn(f"could not record {record.kind} {record.id} on {label}: "
                 f"{res.stderr.strip()}")


async def read_history(cfg: Config, pool: HostPool, env: str) -> History:
    label = pool.env(env).hosts[0].label
    res = await pool.host(env, label).run(read_records(cfg.project), timeout=30)
    if res.exit_status == ABSENT:
        return History()
    if not res.ok:
        raise CommandFailed(res, f"cannot read the release history on {label}")
    return parse_history(res.stdout)


async def prune_kept(cfg: Config, pool: HostPool, env: str, changes: list[ServiceChange],
                     bus: EventBus) -> list[str]:
    """Keeps the newest `keep_releases` set-aside containers per service; removes older ones
    (never their volumes) and then their images when nothing else uses them."""
    removed: list[str] = []
    for entry in changes:
        if entry.mode != "run":
            continue
        host = pool.host(env, entry.host)
        prefix = f"{entry.container}.ferryman-"
        res = await host.run(dc.all_container_images(), timeout=60)
        kept = sorted((line.split("\t") for line in res.stdout.splitlines()
                       if line.startswith(prefix)), key=lambda x: x[0], reverse=True)
        for name, _image in kept[cfg.keep_releases:]:
            iid = (await host.run(dc.container_image_id(name), timeout=30)).stdout.strip()
            rm = await host.run(dc.remove_container(name), timeout=120)
            if not rm.ok:
                bus.warn(f"could not prune {name} on {entry.host}: {rm.stderr.strip()}")
                continue
            removed.append(f"{entry.host}:{name}")
            if iid:
                await host.run(dc.remove_image(iid), timeout=120)  # refused while in use
    if removed:
        bus.info(f"pruned {len(removed)} kept container(s): {', '.join(removed)}")
    return removed
