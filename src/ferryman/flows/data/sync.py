"""sync-data: snapshot FROM stop-clean, stream the archives to TO, apply them there."""

from __future__ import annotations

import asyncio
from typing import Any

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
from .mask import rules_for
from .plan import DataState, SnapshotPlan, Staging, remove, skeleton
from .run import run_flow, say_where
from .site import DataMismatch, Site, live_folders, located_site


class Relay:
    """sync-data's archives on their way to TO. Each folder's archive is read on FROM while
    the snapshot writes it (the writers' downtime stays the local snapshot's) and, on TO,
    written into the backup's folder, hashed and unpacked beside the live folder in the same
    pass; dumps follow once written. Nothing is accepted until its sha256 and counts match
    what FROM's snapshot recorded."""

    def __init__(self, src: Site, dst: Site, p: SnapshotPlan, rid: str, state: DataState,
                 bus: EventBus) -> None:
        self.src, self.dst, self.p, self.rid, self.state, self.bus = src, dst, p, rid, state, bus
        self.tasks: dict[str, asyncio.Task[tuple[int, int, str, int]]] = {}

    def staged(self, item: ar.Item, live: str | None) -> str:
        return Staging(item, "", live, self.rid).paths(live)[1]

    def argvs(self, item: ar.Item, live: str | None = None) -> tuple[list[str], list[str]]:
        """(read on FROM, take on TO) for one item."""
        here = f"{self.p.folder}/{item.archive}"
        read = ["cat", here] if item.kind == "dump" else ar.follow_archive(here)
        dest = "" if item.kind == "dump" else self.staged(item, live or self.state.live.get(
            item.name))
        return read, ar.receive(f"{self.dst.folder(self.p.bid)}/{item.archive}", dest,
                                self.p.compression)

    def start(self, item: ar.Item) -> None:
        self.tasks[item.name] = asyncio.create_task(self._carry(item))

    async def _carry(self, item: ar.Item) -> tuple[int, int, str, int]:
        live = None
        if item.kind != "dump":
            if item.name not in self.state.live:  # a volume TO does not have yet
                self.state.live.update(await live_folders(self.dst, [item], create=True))
            live = self.state.live[item.name]
        read, take = self.argvs(item, live)
        res = await pipe(self.src.host, read, self.dst.host, take,
                         on_progress=lambda n: self.bus.emit(
                             "progress", task=item.archive, description=item.archive,
                             completed=n, total=None))
        if not res.ok:
            raise CommandFailed(res.source if not res.source.ok else res.sink,
                                f"sending {item.label} failed")
        return ar.parse_pack(res.sink.stdout)

    async def finish(self, m: ar.Manifest) -> int:
        """Waits for every archive (sends the dumps now) and proves each arrived whole."""
        for item in m.items:
            if item.name not in self.tasks:
                self.start(item)
        try:
            got = await asyncio.gather(*(self.tasks[i.name] for i in m.items))
        except BaseException:
            await self._stop()
            raise
        for item, (files, size, sha, archive) in zip(m.items, got, strict=True):
            if sha != item.sha256 or archive != item.archive_bytes:
                raise DataMismatch(f"{item.label}: {archive} bytes with sha256 {sha} reached "
                                   f"{self.dst.label}, {self.src.label} wrote "
                                   f"{item.archive_bytes} with sha256 {item.sha256}")
            if item.kind != "dump" and (files, size) != (item.files, item.bytes):
                raise DataMismatch(f"{item.label}: unpacked {files} files / {size} bytes on "
                                   f"{self.dst.label}, the manifest says {item.files} / "
                                   f"{item.bytes}")
        return sum(g[3] for g in got)

    async def _stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def leftovers(self) -> list[str]:
        """What a relay leaves on TO: the backup's folder, the folders unpacked so far."""
        staged = [self.staged(i, self.state.live[i.name]) for i in self.p.items
                  if i.kind != "dump" and i.name in self.state.live]
        return [self.dst.folder(self.p.bid), *staged]

    async def cancel(self) -> None:
        await self._stop()
        await self.dst.host.run(remove(self.leftovers()), timeout=300)

    def undo_data(self) -> dict[str, Any]:
        return {"kind": "commands", "host": self.dst.label, "argvs": [remove(self.leftovers())]}


def send_step(relay: Relay) -> Step:
    src, dst, p, state = relay.src, relay.dst, relay.p, relay.state
    manifest = write_file(f"{dst.folder(p.bid)}/{ar.MANIFEST}")

    async def run() -> str:
        m = state.snapshot
        assert m is not None
        total = await relay.finish(m)
        sent = ar.Manifest.parse(m.to_json())
        sent.kind, sent.source = "sync", f"{src.env}/{src.label}/{p.bid}"
        await dst.host.run(manifest, input=sent.to_json().encode(), timeout=30, check=True)
        state.applied, state.sent = sent, total
        return (f"{total} bytes, {len(m.items)} archive(s) {src.label} -> {dst.label}, "
                "sha256 and counts as written")

    async def undo() -> None:
        await relay.cancel()

    lines = [f"{src.label}: {short_command(read)} | {dst.label}: {short_command(take)}"
             for read, take in map(relay.argvs, p.items)]
    return Step(f"send backup {p.bid} {src.label} -> {dst.label}", run, undo,
                undo_data=relay.undo_data(),
                params={"from": src.folder(p.bid), "to": dst.folder(p.bid)}, host=dst.label,
                undo_if_failed=True, commands=[*lines, f"{dst.label}: {short_command(manifest)}"])


async def sync(cfg: Config, pool: HostPool, src_env: str, dst_env: str, bus: EventBus,
               dry_run: bool = False, mask: bool = False) -> tuple[Outcome, DataState]:
    """mask: TO gets a masked copy (data.dumps[].mask run before its services start)."""
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    pool.env(dst_env)
    rules = rules_for(cfg, dst_env, mask)
    src = await located_site(cfg, pool, src_env)
    dst = await located_site(cfg, pool, dst_env)
    bid, rid, safety_id = ar.backup_id("b"), ar.backup_id("r"), ar.backup_id("s")
    taken = await snapshot.plan(src, bid, "backup", follow=True)
    # Every step is known now: the apply is planned from the snapshot's plan, and reads the
    # counts the send step hands on when it runs.
    m = skeleton(taken, cfg.project, src.env, src.label)
    safety, live = await plan_target(dst, m, safety_id)
    state = DataState()
    state.live.update(live)
    relay = Relay(src, dst, taken, rid, state, bus)
    steps = [*snapshot.backup_steps(src, taken, state, relay), send_step(relay),
             *apply_steps(dst, m, safety, live, rid, state, received=True, mask=rules)]
    outcome = await run_flow(bus, [src, dst], f"sync-data {src_env} {dst_env} ({bid})", steps,
                             {"from": src_env, "to": dst_env, "id": bid,
                              **({"mask": True} if rules else {})}, dry_run)
    say_where(bus, outcome, state, dst, dry_run)
    return outcome, state
