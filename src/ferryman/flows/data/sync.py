"""sync-data: snapshot FROM stop-clean, stream the archives to TO, apply them there."""

from __future__ import annotations

import shlex

from ...config import Config
from ...data import archive as ar
from ...errors import BadInput
from ...events import EventBus
from ...hosts import HostPool
from ...state import write_file
from ...steps import Outcome, Step
from ...transport import CommandFailed, pipe
from ...transport.base import short_command
from . import snapshot
from .apply import apply_steps, plan_target
from .plan import DataState, SnapshotPlan, remove, skeleton
from .run import run_flow, say_where
from .site import Site, located_site


def send_argvs(src: Site, dst: Site, p: SnapshotPlan) -> list[tuple[list[str], list[str]]]:
    """(read on FROM, write on TO) per archive, in the snapshot's order."""
    return [(["cat", f"{p.folder}/{i.archive}"], write_file(f"{dst.folder(p.bid)}/{i.archive}"))
            for i in p.items]


def send_step(src: Site, dst: Site, p: SnapshotPlan, state: DataState, bus: EventBus) -> Step:
    pairs = send_argvs(src, dst, p)
    manifest = write_file(f"{dst.folder(p.bid)}/{ar.MANIFEST}")

    async def run() -> str:
        m = state.snapshot
        assert m is not None
        total = 0
        for (read, write), item in zip(pairs, m.items, strict=True):
            name = item.archive
            res = await pipe(src.host, read, dst.host, write,
                             on_progress=lambda n, name=name, base=total: bus.emit(
                                 "progress", task=name, description=name, completed=base + n,
                                 total=m.archive_bytes))
            if not res.ok:
                raise CommandFailed(res.source if not res.source.ok else res.sink,
                                    f"sending {name} failed")
            total += res.bytes
        sent = ar.Manifest.parse(m.to_json())
        sent.kind, sent.source = "sync", f"{src.env}/{src.label}/{p.bid}"
        await dst.host.run(manifest, input=sent.to_json().encode(), timeout=30, check=True)
        state.applied, state.sent = sent, total
        return f"{total} bytes, {len(pairs)} archive(s) {src.label} -> {dst.label}"

    async def undo() -> None:
        await dst.host.run(remove([dst.folder(p.bid)]), timeout=300)

    lines = [f"{src.label}: {shlex.join(read)} | {dst.label}: {short_command(write)}"
             for read, write in pairs]
    return Step(f"send backup {p.bid} {src.label} -> {dst.label}", run, undo,
                params={"from": src.folder(p.bid), "to": dst.folder(p.bid)}, host=dst.label,
                undo_if_failed=True, commands=[*lines, f"{dst.label}: {short_command(manifest)}"])


async def sync(cfg: Config, pool: HostPool, src_env: str, dst_env: str, bus: EventBus,
               dry_run: bool = False) -> tuple[Outcome, DataState]:
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    src = await located_site(cfg, pool, src_env)
    dst = await located_site(cfg, pool, dst_env)
    bid, rid, safety_id = ar.backup_id("b"), ar.backup_id("r"), ar.backup_id("s")
    taken = await snapshot.plan(src, bid, "backup")
    # Every step is known now: the apply is planned from the snapshot's plan, and reads the
    # counts the send step hands on when it runs.
    m = skeleton(taken, cfg.project, src.env, src.label)
    safety, live = await plan_target(dst, m, safety_id)
    state = DataState()
    steps = [*snapshot.backup_steps(src, taken, state), send_step(src, dst, taken, state, bus),
             *apply_steps(dst, m, safety, live, rid, state)]
    outcome = await run_flow(bus, [src, dst], f"sync-data {src_env} {dst_env} ({bid})", steps,
                             {"from": src_env, "to": dst_env, "id": bid}, dry_run)
    say_where(bus, outcome, state, dst, dry_run)
    return outcome, state
