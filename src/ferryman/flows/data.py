"""Data flows: backup (stop-clean snapshot), restore and sync-data (one apply path), verify.

Rules from the source notes: the business containers are stopped, and verified stopped,
before a byte is read; they are started again in reverse order, always, also when the
snapshot failed. An apply keeps a safety backup first, unpacks beside the live folders,
checks every count against the manifest, swaps in, and on any failure swaps the old data
back and starts the services again.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..config import Config
from ..config.schema import Data
from ..data import archive as ar
from ..docker import commands as dc
from ..docker.images import DECOMPRESS, pick_compression
from ..docker.inspect import parse_containers
from ..errors import BadInput, FlowFailed, Mismatch, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool
from ..journal import Journal
from ..locking import EnvLock, LockOwner
from ..state import now_iso, write_file
from ..steps import Outcome, Step, run_steps
from ..transport import CommandFailed, Host, pipe
from .guards import guard_step
from .health import wait_healthy
from .transfer import tools


class DataMismatch(Mismatch):
    """An archive or an unpacked item is not what its manifest says."""


@dataclass
class Site:
    """The host of an environment that holds its data (the environment's first host)."""

    cfg: Config
    env: str
    label: str
    host: Host

    @property
    def data(self) -> Data:
        if self.cfg.data is None:
            raise BadInput("ferryman.yml has no data section: nothing to back up or restore")
        return self.cfg.data

    @property
    def base(self) -> str:
        return ar.folder(self.data.backup_dir, self.cfg.project)

    def folder(self, bid: str) -> str:
        return ar.folder(self.data.backup_dir, self.cfg.project, bid)


def site(cfg: Config, pool: HostPool, env: str) -> Site:
    label = pool.env(env).hosts[0].label
    return Site(cfg, env, label, pool.host(env, label))


def wanted_items(data: Data) -> list[ar.Item]:
    # Dumps first: they need their databases running, which the snapshot does not stop.
    return ([ar.Item("dump", d.name, engine=d.engine, user=d.user or "") for d in data.dumps]
            + [ar.Item("volume", v) for v in data.volumes]
            + [ar.Item("path", p) for p in data.paths])


async def live_folders(s: Site, items: list[ar.Item], create: bool = False) -> dict[str, str]:
    """Item name -> the folder that holds it on the host; a missing one is a clear error."""
    out: dict[str, str] = {}
    volumes = [i.name for i in items if i.kind == "volume"]
    if volumes:
        if create:
            for name in volumes:
                await s.host.run(["docker", "volume", "create", name], timeout=60, check=True)
        res = await s.host.run(ar.volume_mountpoints(volumes), timeout=60)
        for line in res.stdout.splitlines():
            name, _, mount = line.partition(" ")
            out[name] = mount
        missing = [v for v in volumes if v not in out]
        if missing:
            raise PreconditionFailed(f"no volume {', '.join(missing)} on {s.label}",
                                     hint=f"ferryman backup {s.env} --discover lists them")
    paths = [i.name for i in items if i.kind == "path"]
    if paths:
        found = dc.parse_files_exist((await s.host.run(dc.files_exist(paths), timeout=30)).stdout)
        missing = [p for p in paths if not found.get(p)]
        if missing and not create:
            raise PreconditionFailed(f"no folder {', '.join(missing)} on {s.label}")
        out.update({p: p for p in paths})
    return out


# --- stopping and starting the business containers ---------------------------------------

@dataclass
class Quiesce:
    site: Site
    stopped: list[str] = field(default_factory=list)  # the ones we stopped, in stop order

    async def stop(self) -> str:
        names = self.site.data.stop
        if not names:
            return "no containers to stop (data.stop is empty)"
        now = parse_containers((await self.site.host.run(dc.inspect_containers(names),
                                                          timeout=60)).stdout)
        for name in names:
            if name in now and now[name].status in ("running", "restarting", "paused"):
                await self.site.host.run(["docker", "stop", name], timeout=180, check=True)
                self.stopped.append(name)
        # Verified, not assumed: a restart policy or an operator may have started one again.
        after = parse_containers((await self.site.host.run(dc.inspect_containers(names),
                                                            timeout=60)).stdout)
        still = [n for n in names if n in after and after[n].running]
        if still:
            raise PreconditionFailed(f"still running after docker stop: {', '.join(still)}",
                                     hint="a restart policy or supervisor restarts them")
        absent = [n for n in names if n not in after]
        note = f"; not on this host: {', '.join(absent)}" if absent else ""
        return f"stopped {', '.join(self.stopped) or 'nothing (all were stopped)'}{note}"

    async def start(self) -> str:
        """Starts what we stopped, in reverse order, then waits for each to be healthy."""
        cfg = self.site.cfg
        by_container = {s.container_name: s for s in cfg.services.values()}
        for name in reversed(self.stopped):
            await self.site.host.run(["docker", "start", name], timeout=180, check=True)
        for name in reversed(self.stopped):
            svc = by_container.get(name)
            await wait_healthy(self.site.host, svc.name if svc else name, name,
                               svc.health if svc else None, env=self.site.env)
        return f"started {', '.join(reversed(self.stopped)) or 'nothing'}"

    async def stop_again(self) -> None:
        for name in self.stopped:
            await self.site.host.run(["docker", "stop", name], timeout=180)

    def steps(self, what: str) -> tuple[Step, Step]:
        names = self.site.data.stop
        stop = Step(f"stop business containers on {self.site.label}", self.stop, self.start,
                    params={"order": names, "keep_running": self.site.data.never_stop},
                    host=self.site.label, undo_if_failed=True,
                    commands=[shlex.join(["docker", "stop", n]) for n in names])
        start = Step(f"start business containers on {self.site.label}", self.start,
                     self.stop_again, params={"order": list(reversed(names)), "after": what},
                     host=self.site.label, undo_if_failed=True,
                     commands=[shlex.join(["docker", "start", n]) for n in reversed(names)])
        return stop, start


# --- snapshot -------------------------------------------------------------------------------

async def snapshot(s: Site, bid: str, kind: str, stopped: list[str]) -> ar.Manifest:
    items = wanted_items(s.data)
    folders = await live_folders(s, [i for i in items if i.kind != "dump"])
    compression = pick_compression(await tools(s.host), {"zstd", "gzip"})
    names = list(dict.fromkeys([*s.data.stop, *(x.container_name
                                                for x in s.cfg.services.values())]))
    facts = parse_containers((await s.host.run(dc.inspect_containers(names), timeout=60)).stdout)
    m = ar.Manifest(bid, s.cfg.project, s.env, s.label, now_iso(), compression, __version__,
                    kind=kind, images={n: f.image_id for n, f in facts.items()},
                    stopped=list(stopped), items=items)
    m.snapshot_started = (await s.host.run(ar.host_clock(), timeout=30)).stdout.strip()
    for item in items:
        item.archive = ar.archive_name(item, compression)
        out = f"{s.folder(bid)}/{item.archive}"
        argv = (ar.dump(item, out, compression) if item.kind == "dump"
                else ar.pack(folders[item.name], out, compression))
        res = await s.host.run(argv, timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"archiving {item.label} on {s.label} failed")
        item.files, item.bytes, item.sha256, item.archive_bytes = ar.parse_pack(res.stdout)
    m.snapshot_ended = (await s.host.run(ar.host_clock(), timeout=30)).stdout.strip()
    await s.host.run(write_file(f"{s.folder(bid)}/{ar.MANIFEST}"),
                     input=m.to_json().encode(), timeout=30, check=True)
    return m


def snapshot_step(s: Site, q: Quiesce, bid: str, kind: str, out: dict[str, Any],
                  key: str = "manifest") -> Step:
    async def run() -> str:
        m = await snapshot(s, bid, kind, q.stopped)
        out[key] = m
        return (f"{len(m.items)} item(s), {m.total_bytes} bytes in {sum(i.files for i in m.items)}"
                f" files -> {m.archive_bytes} bytes ({m.compression}) in {s.folder(bid)}")

    async def undo() -> None:
        await s.host.run(["rm", "-rf", "--", s.folder(bid)], timeout=120)

    return Step(f"snapshot {s.env} on {s.label}", run, undo,
                params={"id": bid, "volumes": s.data.volumes, "paths": s.data.paths,
                        "into": s.folder(bid)}, host=s.label, undo_if_failed=True,
                commands=[f"tar | zstd > {s.folder(bid)}/<item>.tar.zst, per item"])


def backup_steps(s: Site, bid: str, kind: str, out: dict[str, Any]) -> list[Step]:
    q = Quiesce(s)
    stop, start = q.steps("snapshot")
    return [stop, snapshot_step(s, q, bid, kind, out), start]


async def prune(s: Site, bus: EventBus) -> list[str]:
    ms = ar.parse_manifests((await s.host.run(ar.list_manifests(s.base), timeout=60)).stdout)
    old = ar.beyond_retention(ms, s.data.keep, s.data.keep_days)
    for m in old:
        await s.host.run(["rm", "-rf", "--", s.folder(m.id)], timeout=300)
    if old:
        bus.info(f"removed {len(old)} backup(s) beyond keep={s.data.keep}"
                 + (f", keep_days={s.data.keep_days:g}" if s.data.keep_days else "")
                 + f" on {s.label}: "
                 + ", ".join(m.id for m in old))
    return [m.id for m in old]


async def list_backups(s: Site) -> list[ar.Manifest]:
    return ar.parse_manifests((await s.host.run(ar.list_manifests(s.base), timeout=60)).stdout)


async def read_manifest(s: Site, bid: str) -> ar.Manifest:
    if not ar.ID_PATTERN.match(bid):
        raise BadInput(f"'{bid}' is not a backup id (like b20261123-101500)",
                       hint=f"ferryman backups {s.env}")
    res = await s.host.run(["cat", f"{s.folder(bid)}/{ar.MANIFEST}"], timeout=30)
    if not res.ok:
        known = [m.id for m in await list_backups(s)]
        raise BadInput(f"no backup {bid} on {s.label} (has: {', '.join(known[-5:]) or 'none'})",
                       hint=f"ferryman backups {s.env}")
    return ar.Manifest.parse(res.stdout)


# --- verify -------------------------------------------------------------------------------

async def verify_archives(s: Site, m: ar.Manifest) -> str:
    paths = [f"{s.folder(m.id)}/{i.archive}" for i in m.items]
    res = await s.host.run(ar.sha256(paths), timeout=None)
    got = ar.parse_sha256(res.stdout)
    bad = [f"{i.label}: sha256 {got.get(p, 'missing')} != {i.sha256}"
           for i, p in zip(m.items, paths, strict=True) if got.get(p) != i.sha256]
    if bad:
        raise DataMismatch(f"backup {m.id} on {s.label} is damaged: " + "; ".join(bad),
                           hint="use another backup; this one was changed after it was made")
    return f"{len(paths)} archive(s) match their sha256"


async def unpack_checked(s: Site, archive: str, dest: str, item: ar.Item,
                         compression: str) -> tuple[int, int]:
    """Unpacks into a fresh `dest` and proves the counts match the manifest."""
    res = await s.host.run(ar.unpack(archive, dest, compression), timeout=None)
    if not res.ok:
        raise CommandFailed(res, f"unpacking {item.label} into {dest} failed")
    files, size = ar.parse_unpack(res.stdout)
    if (files, size) != (item.files, item.bytes):
        raise DataMismatch(f"{item.label}: unpacked {files} files / {size} bytes, the "
                           f"manifest says {item.files} / {item.bytes}")
    return files, size


async def drill(s: Site, m: ar.Manifest) -> str:
    """Unpacks every archive into a scratch folder and checks counts and sizes."""
    scratch = f"{s.folder(m.id)}.drill"
    try:
        for item in m.items:
            if item.kind == "dump":
                res = await s.host.run(ar.dump_size(f"{s.folder(m.id)}/{item.archive}",
                                                    m.compression), timeout=None)
                if not res.ok or int(res.stdout.split()[-1]) != item.bytes:
                    raise DataMismatch(f"{item.label}: {res.stdout.strip() or res.stderr.strip()}"
                                       f" bytes unpacked, manifest says {item.bytes}")
                continue
            await unpack_checked(s, f"{s.folder(m.id)}/{item.archive}",
                                 f"{scratch}/{item.archive}", item, m.compression)
    finally:
        await s.host.run(["rm", "-rf", "--", scratch], timeout=300)
    return f"{len(m.items)} item(s) unpacked and counted: all match"


# --- apply ----------------------------------------------------------------------------------

def apply_steps(s: Site, m: ar.Manifest, rid: str, out: dict[str, Any],
                safety_id: str | None = None) -> list[Step]:
    """The one apply path of restore and sync-data, on site s, from backup m already there."""
    q = Quiesce(s)
    stop, start = q.steps("apply")
    folders: dict[str, str] = {}

    async def check() -> str:
        need = DECOMPRESS[m.compression].split()[0]
        if m.compression != "none" and need not in await tools(s.host):
            raise PreconditionFailed(f"{s.label} has no {need} to unpack backup {m.id}")
        return await verify_archives(s, m)

    steps = [Step(f"verify backup {m.id} on {s.label}", check, params={"items": [
        i.label for i in m.items]}, host=s.label)]
    steps.append(stop)
    safety_id = safety_id or ar.backup_id("s")
    steps.append(snapshot_step(s, q, safety_id, "safety", out, key="safety_manifest"))
    steps[-1].name = f"safety backup {safety_id} on {s.label}"
    steps[-1].undo = None  # a safety copy is never removed by an undo
    for item in m.items:
        if item.kind == "dump":
            steps.append(_dump_step(s, m, item, out))
        else:
            steps.extend(_item_steps(s, m, item, rid, folders))
    for guard in s.cfg.guards:
        if guard.applies_to(s.env):
            # No restart: the business containers start after the swap anyway.
            steps.append(guard_step(s.cfg, s.env, s.label, s.host, guard, rid))
    steps.append(start)

    async def clean() -> str:
        olds = [f"{f}.ferryman-old-{rid}" for f in folders.values()]
        await s.host.run(["rm", "-rf", "--", *olds], timeout=None)
        return f"removed the replaced data ({len(olds)} folder(s)); safety backup {safety_id}"

    steps.append(Step(f"remove replaced data on {s.label}", clean, host=s.label))
    out["safety"] = safety_id
    return steps


def _dump_step(s: Site, m: ar.Manifest, item: ar.Item, out: dict[str, Any]) -> Step:
    """Loads a dump into its running database; the undo loads the safety backup's dump."""
    archive = f"{s.folder(m.id)}/{item.archive}"

    async def load(source: ar.Manifest, archive: str) -> None:
        facts = parse_containers((await s.host.run(dc.inspect_containers([item.container]),
                                                   timeout=30)).stdout)
        if item.container not in facts or not facts[item.container].running:
            raise PreconditionFailed(f"{item.container} must run to load {item.label} on "
                                     f"{s.label}")
        res = await s.host.run(ar.load_dump(item, archive, source.compression), timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"loading {item.label} on {s.label} failed")

    async def run() -> str:
        await load(m, archive)
        return f"{item.label} loaded from {item.archive}"

    async def undo() -> None:
        safety: ar.Manifest | None = out.get("safety_manifest")
        mine = next((i for i in safety.items if i.name == item.name), None) if safety else None
        if safety is None or mine is None:
            raise FlowFailed(f"no safety dump of {item.label} to load back")
        await load(safety, f"{s.folder(safety.id)}/{mine.archive}")

    return Step(f"load {item.label} on {s.label}", run, undo, host=s.label,
                params={"archive": archive, "engine": item.engine}, undo_if_failed=True,
                commands=[shlex.join(ar.load_command(item))])


def _item_steps(s: Site, m: ar.Manifest, item: ar.Item, rid: str,
                folders: dict[str, str]) -> list[Step]:
    archive = f"{s.folder(m.id)}/{item.archive}"

    async def staged_path() -> tuple[str, str, str]:
        if item.name not in folders:
            folders.update(await live_folders(s, [item], create=True))
        live = folders[item.name]
        return live, f"{live}.ferryman-new", f"{live}.ferryman-old-{rid}"

    async def unpack() -> str:
        live, staged, _ = await staged_path()
        if item.kind == "path":
            await s.host.run(["mkdir", "-p", "--", live.rsplit("/", 1)[0] or "/"], timeout=30)
        files, size = await unpack_checked(s, archive, staged, item, m.compression)
        return f"{files} files, {size} bytes in {staged}: as the manifest says"

    async def drop_staged() -> None:
        _, staged, _ = await staged_path()
        await s.host.run(["rm", "-rf", "--", staged], timeout=None)

    async def swap() -> str:
        live, staged, old = await staged_path()
        await s.host.run(ar.swap(live, staged, old), timeout=60, check=True)
        return f"{live} now holds backup {m.id}; the previous data is {old}"

    async def unswap() -> None:
        live, staged, old = await staged_path()
        await s.host.run(ar.unswap(live, staged, old), timeout=60, check=True)

    where = f"{item.label}"
    return [
        Step(f"unpack {where} beside the live data on {s.label}", unpack, drop_staged,
             params={"archive": archive, "files": item.files, "bytes": item.bytes},
             host=s.label, undo_if_failed=True,
             commands=[shlex.join(ar.unpack(archive, "<live>.ferryman-new", m.compression)[:2])
                       + " ..."]),
        Step(f"swap in {where} on {s.label}", swap, unswap, host=s.label, undo_if_failed=True,
             commands=["mv <live> <live>.ferryman-old-ID && mv <live>.ferryman-new <live>"]),
    ]


# --- sync: snapshot on FROM, stream to TO, apply there ------------------------------------

def send_step(src: Site, dst: Site, bid: str, out: dict[str, Any], bus: EventBus) -> Step:
    async def run() -> str:
        m: ar.Manifest = out["manifest"]
        total = 0
        files = [i.archive for i in m.items]
        for name in files:
            res = await pipe(src.host, ["cat", f"{src.folder(bid)}/{name}"], dst.host,
                             write_file(f"{dst.folder(bid)}/{name}"),
                             on_progress=lambda n, name=name, base=total: bus.emit(
                                 "progress", task=name, description=name, completed=base + n,
                                 total=m.archive_bytes))
            if not res.ok:
                raise CommandFailed(res.source if not res.source.ok else res.sink,
                                    f"sending {name} failed")
            total += res.bytes
        m.kind, m.source = "sync", f"{src.env}/{src.label}/{bid}"
        await dst.host.run(write_file(f"{dst.folder(bid)}/{ar.MANIFEST}"),
                           input=m.to_json().encode(), timeout=30, check=True)
        out["sent"] = total
        return f"{total} bytes, {len(files)} archive(s) {src.label} -> {dst.label}"

    async def undo() -> None:
        await dst.host.run(["rm", "-rf", "--", dst.folder(bid)], timeout=300)

    return Step(f"send backup {bid} {src.label} -> {dst.label}", run, undo,
                params={"from": src.folder(bid), "to": dst.folder(bid)}, host=dst.label,
                undo_if_failed=True, commands=[f"{src.label}: cat ARCHIVE | {dst.label}: cat > "
                                               f"{dst.folder(bid)}/ARCHIVE, per archive"])


# --- whole flows ----------------------------------------------------------------------------

def _owner(command: str) -> LockOwner:
    return LockOwner.mine(command)


async def run_flow(bus: EventBus, sites: list[Site], owner: LockOwner, steps: list[Step],
                   params: dict[str, Any], dry_run: bool) -> Outcome:
    locks = [EnvLock(s.env, s.label, s.host, s.cfg.project, owner) for s in sites]
    journal = Journal(bus.flow, str(params.get("id", "")), sites[-1].env, sites[-1].cfg.project,
                      owner.owner, owner.command, context=dict(params),
                      hosts=[(s.label, s.host) for s in sites])
    return await run_steps(bus, steps, params, locks=locks, journal=journal, dry_run=dry_run)


async def backup(cfg: Config, pool: HostPool, env: str, bus: EventBus,
                 dry_run: bool = False) -> tuple[Outcome, ar.Manifest | None]:
    s = site(cfg, pool, env)
    await live_folders(s, wanted_items(s.data))  # a missing volume or folder: refuse now
    bid = ar.backup_id("b")
    out: dict[str, Any] = {}
    outcome = await run_flow(bus, [s], _owner(f"backup {env} ({bid})"),
                             backup_steps(s, bid, "backup", out),
                             {"env": env, "id": bid, "host": s.label}, dry_run)
    if outcome.ok and not dry_run:
        await prune(s, bus)
    return outcome, out.get("manifest")


async def restore(cfg: Config, pool: HostPool, env: str, bid: str, bus: EventBus,
                  dry_run: bool = False) -> tuple[Outcome, dict[str, Any]]:
    s = site(cfg, pool, env)
    m = await read_manifest(s, bid)
    out: dict[str, Any] = {}
    rid = ar.backup_id("r")
    steps = apply_steps(s, m, rid, out)
    outcome = await run_flow(bus, [s], _owner(f"restore {env} {bid}"), steps,
                             {"env": env, "id": bid, "from": m.source or f"{m.env}/{m.host}"},
                             dry_run)
    _say_where(bus, outcome, out, s, dry_run)
    return outcome, out


async def sync(cfg: Config, pool: HostPool, src_env: str, dst_env: str, bus: EventBus,
               dry_run: bool = False) -> tuple[Outcome, dict[str, Any]]:
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    src, dst = site(cfg, pool, src_env), site(cfg, pool, dst_env)
    await live_folders(src, wanted_items(src.data))
    bid = ar.backup_id("b")
    out: dict[str, Any] = {}
    steps = backup_steps(src, bid, "backup", out)
    steps.append(send_step(src, dst, bid, out, bus))
    # The manifest is known only once the snapshot ran: the apply steps are made then.
    rid, safety = ar.backup_id("r"), ar.backup_id("s")
    apply = LateSteps(lambda: apply_steps(dst, out["manifest"], rid, out, safety))
    shape = apply.placeholder(dst, wanted_items(dst.data), cfg, rid, safety)
    outcome = await run_flow(bus, [src, dst], _owner(f"sync-data {src_env} {dst_env} ({bid})"),
                             [*steps, *shape],
                             {"from": src_env, "to": dst_env, "id": bid}, dry_run)
    _say_where(bus, outcome, out, dst, dry_run)
    return outcome, out


def _say_where(bus: EventBus, outcome: Outcome, out: dict[str, Any], s: Site,
               dry_run: bool) -> None:
    if dry_run or "safety" not in out:
        return
    state = ("holds the new data" if outcome.ok else
             "holds its previous data again" if not outcome.undo_failed else
             "NEEDS ATTENTION: an undo failed")
    bus.info(f"{s.env} ({s.label}) {state}; safety backup {out['safety']} is in "
             f"{s.folder(out['safety'])}")


class LateSteps:
    """Apply steps for a sync: their names and order are fixed up front (step N/M stays
    true), their actions read the manifest that the snapshot step produced."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.real: list[Step] | None = None

    def placeholder(self, s: Site, items: list[ar.Item], cfg: Config, rid: str,
                    safety: str) -> list[Step]:
        probe = ar.Manifest("(the snapshot)", cfg.project, s.env, s.label, "", "zstd", "",
                            items=[ar.Item(i.kind, i.name, archive="ARCHIVE") for i in items])
        shape = apply_steps(s, probe, rid, {}, safety)
        out = []
        for n, step in enumerate(shape):
            async def run(n: int = n) -> Any:
                return await self._steps()[n].run()

            async def undo(n: int = n) -> Any:
                real = self._steps()[n]
                return await real.undo() if real.undo else None

            out.append(Step(step.name, run, undo if step.undo else None, params=step.params,
                            host=step.host, commands=step.commands,
                            undo_if_failed=step.undo_if_failed))
        return out

    def _steps(self) -> list[Step]:
        if self.real is None:
            self.real = self.make()
        return self.real
