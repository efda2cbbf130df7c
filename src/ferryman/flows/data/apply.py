"""Apply a backup already on the target: the one path of `restore` and `sync-data`.

A safety backup first, each item unpacked beside its live folder and counted against the
manifest, swapped in; on any failure the old data is swapped back and the services start."""

from __future__ import annotations

from typing import Any

from ...config import Config
from ...data import archive as ar
from ...docker import commands as dc
from ...docker.images import DECOMPRESS
from ...docker.inspect import parse_containers
from ...errors import FlowFailed, PreconditionFailed
from ...events import EventBus
from ...hosts import HostPool
from ...steps import Outcome, Step
from ...transport import CommandFailed
from ..guards import guard_step
from ..transfer import tools
from . import snapshot
from .mask import mask_steps, refuse_unmasked
from .plan import DataState, SnapshotPlan, Staging, lines, remove
from .quiesce import Quiesce
from .run import run_flow, say_where
from .site import Site, live_folders, located_site
from .store import read_manifest
from .verify import digest_argv, unpack_checked, verify_archives


async def plan_target(s: Site, m: ar.Manifest, safety_id: str) -> tuple[SnapshotPlan,
                                                                        dict[str, str]]:
    """The safety snapshot of the target, and the live folders of m's items known now."""
    safety = await snapshot.plan(s, safety_id, "safety")
    live = await live_folders(s, [i for i in m.items if i.kind != "dump"], strict=False)
    return safety, live


def apply_steps(s: Site, m: ar.Manifest, safety: SnapshotPlan, live: dict[str, str], rid: str,
                state: DataState, received: bool = False,
                mask: dict[str, list[str]] | None = None) -> list[Step]:
    """m: the backup as planned (ids, archives, compression); its counts are read from
    state.applied when the steps run. live: folders known at planning. received: the
    archives arrived verified and already unpacked beside the live folders (sync-data).
    mask: dump name -> SQL rules run once the data is in, before any service starts."""
    q = Quiesce(s)
    stop, start = q.steps("apply")
    state.live.update(live)
    state.safety_id = safety.bid

    async def check() -> str:
        applied = state.applied
        assert applied is not None
        need = DECOMPRESS[applied.compression].split()[0]
        if applied.compression != "none" and need not in await tools(s.host):
            raise PreconditionFailed(f"{s.label} has no {need} to unpack backup {applied.id}")
        return await verify_archives(s, applied)

    verify = Step(f"verify backup {m.id} on {s.label}", check, params={"items": [
        i.label for i in m.items]}, host=s.label, commands=lines([digest_argv(s, m)]))
    steps = [*([] if received else [verify]), stop, snapshot.snapshot_step(s, q, safety, state)]
    stagings: list[Staging] = []
    for item in m.items:
        archive = f"{s.folder(m.id)}/{item.archive}"
        if item.kind == "dump":
            steps.append(_dump_step(s, m, item, archive, safety, state))
        else:
            st = Staging(item, archive, live.get(item.name), rid)
            stagings.append(st)
            steps.extend(_item_steps(s, m, st, state, received))
    if mask:
        steps.extend(mask_steps(s, m, mask, state))
    for guard in s.cfg.guards:
        if guard.applies_to(s.env):
            # No restart: the business containers start after the swap anyway.
            steps.append(guard_step(s.cfg, s.env, s.label, s.host, guard, rid))
    steps.append(start)

    def olds() -> list[str]:
        return [st.paths(state.live.get(st.item.name))[2] for st in stagings]

    async def clean() -> str:
        gone = olds()
        await s.host.run(remove(gone), timeout=None)
        return f"removed the replaced data ({len(gone)} folder(s)); safety backup {safety.bid}"

    steps.append(Step(f"remove replaced data on {s.label}", clean, host=s.label,
                      commands=lines([remove(olds())])))
    return steps


def _dump_step(s: Site, m: ar.Manifest, item: ar.Item, archive: str, safety: SnapshotPlan,
               state: DataState) -> Step:
    """Loads a dump into its running database; the undo loads the safety backup's dump."""
    load_argv = ar.load_dump(item, archive, m.compression)
    back = safety.archive(item.name)
    back_argv = ar.load_dump(item, back, safety.compression) if back else None

    async def load(argv: list[str]) -> None:
        facts = parse_containers((await s.host.run(dc.inspect_containers([item.container]),
                                                   timeout=30)).stdout)
        if item.container not in facts or not facts[item.container].running:
            raise PreconditionFailed(f"{item.container} must run to load {item.label} on "
                                     f"{s.label}")
        res = await s.host.run(argv, timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"loading {item.label} on {s.label} failed")

    async def run() -> str:
        await load(load_argv)
        return f"{item.label} loaded from {item.archive}"

    async def undo() -> None:
        if state.safety is None or back_argv is None:
            raise FlowFailed(f"no safety dump of {item.label} to load back")
        await load(back_argv)

    return Step(f"load {item.label} on {s.label}", run, undo, host=s.label,
                undo_data={"kind": "commands", "host": s.label, "argvs": [back_argv]}
                if back_argv else None,
                params={"archive": archive, "engine": item.engine}, undo_if_failed=True,
                commands=lines([load_argv]))


def _item_steps(s: Site, m: ar.Manifest, st: Staging, state: DataState,
                received: bool) -> list[Step]:
    item = st.item

    async def live() -> str:
        if item.name not in state.live:  # a volume that did not exist at planning
            state.live.update(await live_folders(s, [item], create=True))
        return state.live[item.name]

    async def unpack() -> str:
        where = await live()
        *first, argv = st.unpack(m.compression, where)
        for pre in first:
            await s.host.run(pre, timeout=30)
        staged = st.paths(where)[1]
        files, size = await unpack_checked(s, argv, staged, state.applied_item(item.name))
        return f"{files} files, {size} bytes in {staged}: as the manifest says"

    async def drop_staged() -> None:
        await s.host.run(remove([st.paths(await live())[1]]), timeout=None)

    async def swap() -> str:
        where = await live()
        await s.host.run(st.swap(where), timeout=60, check=True)
        _, _, old = st.paths(where)
        return f"{where} now holds backup {m.id}; the previous data is {old}"

    async def unswap() -> None:
        await s.host.run(st.unswap(await live()), timeout=60, check=True)

    create = [dc.create_volume(item.name)] if item.kind == "volume" and st.live is None else []
    # Undos as data where the live folder is known while planning (a volume created by the
    # run is not: abort then leaves its staged copy, named .ferryman-new, for the operator).
    known = st.live is not None

    def undone(argv: list[str]) -> dict[str, Any] | None:
        return {"kind": "commands", "host": s.label, "argvs": [argv]} if known else None

    unpacking = Step(f"unpack {item.label} beside the live data on {s.label}", unpack,
                     drop_staged, undo_data=undone(remove([st.paths()[1]])),
                     params={"archive": st.archive, "files": item.files, "bytes": item.bytes},
                     host=s.label, undo_if_failed=True,
                     commands=lines([*create, *st.unpack(m.compression)]))
    return [
        *([] if received else [unpacking]),
        Step(f"swap in {item.label} on {s.label}", swap, unswap, host=s.label,
             undo_data=undone(st.unswap()),
             undo_if_failed=True, commands=lines([st.swap()])),
    ]


async def restore(cfg: Config, pool: HostPool, env: str, bid: str, bus: EventBus,
                  dry_run: bool = False) -> tuple[Outcome, DataState]:
    s = await located_site(cfg, pool, env)
    m = await read_manifest(s, bid)
    refuse_unmasked(cfg, env, m)
    rid, safety_id = ar.backup_id("r"), ar.backup_id("s")
    safety, live = await plan_target(s, m, safety_id)
    state = DataState(applied=m)
    outcome = await run_flow(bus, [s], f"restore {env} {bid}",
                             apply_steps(s, m, safety, live, rid, state),
                             {"env": env, "id": bid, "from": m.source or f"{m.env}/{m.host}"},
                             dry_run)
    say_where(bus, outcome, state, s, dry_run)
    return outcome, state
