"""The release history kept on TO's first host, and pruning what releases kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Config
from ..events import EventBus
from ..hosts import HostPool
from ..state import append_record, now_iso, operator, parse_records, read_records
from ..steps import Outcome
from ..transport import TransportError

if TYPE_CHECKING:
    from .release import Plan


async def record_release(cfg: Config, pool: HostPool, plan: Plan, outcome: Outcome,
                         bus: EventBus, kind: str = "release",
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": plan.rid, "kind": kind, "from": plan.src_env, "to": plan.dst_env,
        "who": operator(), "when": now_iso(), "duration": round(outcome.duration, 1),
        "result": "ok" if outcome.ok else "failed",
        "services": plan.services, **(extra or {}),
    }
    if not outcome.ok:
        record.update(error=outcome.error, failed_step=outcome.failed_step,
                      undone=outcome.undone, undo_failed=outcome.undo_failed)
    host = pool.host(plan.dst_env, plan.lock_host)
    try:
        res = await host.run(append_record(cfg.project, record), timeout=30)
    except TransportError as exc:
        # The history's host was the one lost: the outcome above still stands.
        bus.warn(f"could not record {kind} {plan.rid} on {plan.lock_host}: {exc}")
        return record
    if res.ok:
        bus.info(f"recorded {kind} {plan.rid} on {plan.lock_host}")
    else:
        bus.warn(f"could not record {kind} {plan.rid} on {plan.lock_host}: {res.stderr.strip()}")
    return record


async def read_history(cfg: Config, pool: HostPool, env: str) -> list[dict[str, Any]]:
    label = pool.env(env).hosts[0].label
    res = await pool.host(env, label).run(read_records(cfg.project), timeout=30)
    if not res.ok and "No such file" not in res.stderr:
        from ..transport import CommandFailed

        raise CommandFailed(res, f"cannot read the release history on {label}")
    return parse_records(res.stdout)


async def prune_kept(cfg: Config, pool: HostPool, env: str, services: list[dict[str, Any]],
                     bus: EventBus) -> list[str]:
    """Keeps the newest `keep_releases` set-aside containers per service; removes older ones
    (never their volumes) and then their images when nothing else uses them."""
    removed: list[str] = []
    for entry in services:
        if entry.get("mode") != "run":
            continue
        host = pool.host(env, entry["host"])
        prefix = f"{entry['container']}.ferryman-"
        res = await host.run(["docker", "ps", "-a", "--format", "{{.Names}}\t{{.Image}}"],
                             timeout=60)
        kept = sorted((line.split("\t") for line in res.stdout.splitlines()
                       if line.startswith(prefix)), key=lambda x: x[0], reverse=True)
        for name, _image in kept[cfg.keep_releases:]:
            iid = (await host.run(["docker", "inspect", "--format", "{{.Image}}", name],
                                  timeout=30)).stdout.strip()
            rm = await host.run(["docker", "rm", name], timeout=120)
            if not rm.ok:
                bus.warn(f"could not prune {name} on {entry['host']}: {rm.stderr.strip()}")
                continue
            removed.append(f"{entry['host']}:{name}")
            if iid:
                await host.run(["docker", "rmi", iid], timeout=120)  # refused while in use
    if removed:
        bus.info(f"pruned {len(removed)} kept container(s): {', '.join(removed)}")
    return removed
