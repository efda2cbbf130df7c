"""Snapshot: archive every item of an environment while its writers are stopped; `backup`."""

from __future__ import annotations

from typing import Any, Protocol

from ... import __version__
from ...config import Config
from ...data import archive as ar
from ...docker import commands as dc
from ...docker.inspect import parse_containers
from ...events import EventBus
from ...hosts import HostPool
from ...state import now_iso, write_file
from ...steps import Outcome, Step
from ...transport import CommandFailed
from .plan import DataState, SnapshotPlan, lines, plan_snapshot, remove
from .quiesce import Quiesce
from .run import run_flow
from .site import Site, compression, live_folders, located_site, wanted_items
from .store import prune


async def plan(s: Site, bid: str, kind: str, follow: bool = False) -> SnapshotPlan:
    """Reads the facts a snapshot needs (folders, compressor); a missing item refuses."""
    items = wanted_items(s.data)
    folders = await live_folders(s, [i for i in items if i.kind != "dump"])
    return plan_snapshot(bid, kind, s.folder(bid), await compression(s), items, folders,
                         follow)


class Reader(Protocol):
    """Who reads a snapshot's archives while they are written (sync-data's relay)."""

    def start(self, item: ar.Item) -> None: ...
    async def cancel(self) -> None:
        """Stops reading and removes what reached the far side."""
        ...
    def undo_data(self) -> dict[str, Any]:
        """cancel() as data, for an abort from the journal."""
        ...


async def snapshot(s: Site, p: SnapshotPlan, stopped: list[str],
                   reader: Reader | None = None) -> ar.Manifest:
    names = list(dict.fromkeys([*s.stop, *s.service_containers]))
    facts = parse_containers((await s.host.run(dc.inspect_containers(names), timeout=60)).stdout)
    m = ar.Manifest(p.bid, s.cfg.project, s.env, s.label, now_iso(), p.compression, __version__,
                    kind=p.kind, images={n: f.image_id for n, f in facts.items()},
                    stopped=list(stopped), items=[ar.Item(**vars(i)) for i in p.items])
    m.snapshot_started = (await s.host.run(ar.host_clock(), timeout=30)).stdout.strip()
    for item, argv in zip(m.items, p.argvs, strict=True):
        if reader is not None and item.kind != "dump":
            reader.start(item)
        res = await s.host.run(argv, timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"archiving {item.label} on {s.label} failed")
        item.files, item.bytes, item.sha256, item.archive_bytes = ar.parse_pack(res.stdout)
    m.snapshot_ended = (await s.host.run(ar.host_clock(), timeout=30)).stdout.strip()
    await s.host.run(write_file(p.manifest_path), input=m.to_json().encode(), timeout=30,
                     check=True)
    return m


def snapshot_step(s: Site, q: Quiesce, p: SnapshotPlan, state: DataState,
                  reader: Reader | None = None) -> Step:
    """A backup's snapshot (undo: remove it), or an apply's safety backup (kept always).
    reader: takes each folder's archive as it is written; undone with the snapshot."""
    safety = p.kind == "safety"
    mine = {"kind": "commands", "host": s.label, "argvs": [remove([p.folder])]}
    undo_data = None if safety else mine
    if reader is not None:
        undo_data = {"kind": "all", "parts": [mine, reader.undo_data()]}

    async def run() -> str:
        m = await snapshot(s, p, q.stopped, reader)
        if safety:
            state.safety = m
        else:
            state.snapshot = m
        return (f"{len(m.items)} item(s), {m.total_bytes} bytes in {sum(i.files for i in m.items)}"
                f" files -> {m.archive_bytes} bytes ({m.compression}) in {p.folder}")

    async def undo() -> None:
        if reader is not None:
            await reader.cancel()
        await s.host.run(remove([p.folder]), timeout=120)

    name = (f"safety backup {p.bid} on {s.label}" if safety
            else f"snapshot {s.env} on {s.label}")
    return Step(name, run, None if safety else undo,
                undo_data=undo_data,
                params={"id": p.bid, "volumes": s.data.volumes, "paths": s.data.paths,
                        "into": p.folder}, host=s.label, undo_if_failed=not safety,
                commands=lines([*p.argvs, write_file(p.manifest_path)]))


def backup_steps(s: Site, p: SnapshotPlan, state: DataState,
                 reader: Reader | None = None) -> list[Step]:
    q = Quiesce(s)
    stop, start = q.steps("snapshot")
    return [stop, snapshot_step(s, q, p, state, reader), start]


async def backup(cfg: Config, pool: HostPool, env: str, bus: EventBus,
                 dry_run: bool = False) -> tuple[Outcome, ar.Manifest | None]:
    s = await located_site(cfg, pool, env)
    bid = ar.backup_id("b")
    p = await plan(s, bid, "backup")  # a missing volume or folder: refuse now
    state = DataState()
    outcome = await run_flow(bus, [s], f"backup {env} ({bid})", backup_steps(s, p, state),
                             {"env": env, "id": bid, "host": s.label}, dry_run)
    if outcome.ok and not dry_run:
        await prune(s, bus)
    return outcome, state.snapshot
