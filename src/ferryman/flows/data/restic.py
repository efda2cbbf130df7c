"""The restic engine (data.restic): `backup` reads the live volumes and folders, while the
writers are stopped, into one restic snapshot on a repository the data host reaches (sftp
to a backup box); restic stores only the chunks it has not seen. Verify is `restic check
--read-data-subset`; restore puts a snapshot's folders beside the live ones and swaps them
in, as the archive engine does. Dumps keep the archive engine: they are refused here."""

from __future__ import annotations

from ...config import Config
from ...config.backups import Restic
from ...data import archive as ar
from ...data import restic as rc
from ...errors import BadInput
from ...events import EventBus
from ...hosts import HostPool
from ...steps import Outcome, Step
from ...transport import CommandFailed
from .plan import lines, remove
from .quiesce import Quiesce
from .run import run_flow
from .site import Site, live_folders, located_site, wanted_items


def config(s: Site) -> Restic:
    r = s.data.restic
    if r is None:
        raise BadInput("data.restic is not set")
    if s.data.dumps:
        raise BadInput("data.restic backs up volumes and paths; data.dumps are not read by it",
                       hint="take dumps with the archive engine (no data.restic) for now")
    return r


def backup_steps(s: Site, r: Restic, bid: str, paths: list[str],
                 done: list[rc.Summary]) -> list[Step]:
    """Open (or create) the repository, stop the writers, one restic snapshot of `paths`,
    start them, restic retention. The snapshot's summary is appended to `done`."""
    env = s.env
    argv = rc.backup(r, env, bid, paths)

    async def prepare() -> str:
        res = await s.host.run(rc.init(r), timeout=300)
        if not res.ok:
            raise CommandFailed(res, f"the restic repository {r.repository} cannot be opened "
                                     f"or created from {s.label}")
        return f"repository {r.repository} ready"

    async def take() -> str:
        res = await s.host.run(argv, timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"restic backup on {s.label} failed")
        done.append(rc.Summary.parse(res.stdout))
        d = done[-1]
        return (f"snapshot {d.snapshot} ({bid}): {d.files} files, {d.bytes} bytes read, "
                f"{d.added} bytes new to the repository")

    async def forget() -> str:
        res = await s.host.run(rc.forget(r, env), timeout=None)
        if not res.ok:
            raise CommandFailed(res, "restic forget failed")
        return f"kept the newest {r.keep} snapshot(s) of {env}"

    stop, start = Quiesce(s).steps("snapshot")
    return [
        Step(f"open the restic repository from {s.label}", prepare,
             commands=lines([rc.init(r)])),
        stop,
        Step(f"restic snapshot {env} on {s.label}", take, host=s.label,
             params={"id": bid, "paths": paths}, commands=lines([argv])),
        start,
        Step(f"restic retention for {env}", forget, host=s.label,
             commands=lines([rc.forget(r, env)])),
    ]


async def plan_paths(s: Site) -> list[str]:
    items = wanted_items(s.data)
    folders = await live_folders(s, items)
    return [folders[i.name] for i in items]


async def backup(cfg: Config, pool: HostPool, env: str, bus: EventBus,
                 dry_run: bool = False) -> tuple[Outcome, rc.Summary | None]:
    s = await located_site(cfg, pool, env)
    r = config(s)
    bid = ar.backup_id("b")
    done: list[rc.Summary] = []
    steps = backup_steps(s, r, bid, await plan_paths(s), done)
    outcome = await run_flow(bus, [s], f"backup {env} ({bid}, restic)", steps,
                             {"env": env, "id": bid, "host": s.label}, dry_run)
    return outcome, done[0] if done else None


async def snapshots(s: Site) -> list[rc.Snapshot]:
    r = config(s)
    res = await s.host.run(rc.snapshots(r, s.env), timeout=300)
    if not res.ok:
        raise CommandFailed(res, f"restic snapshots failed on {s.label}")
    return rc.parse_snapshots(res.stdout)


async def verify(s: Site) -> str:
    r = config(s)
    res = await s.host.run(rc.check(r), timeout=None)
    if not res.ok:
        raise CommandFailed(res, f"restic check of {r.repository} failed")
    return f"restic check --read-data-subset={r.check_subset}: no errors"


async def restore(cfg: Config, pool: HostPool, env: str, bid: str, bus: EventBus,
                  dry_run: bool = False) -> Outcome:
    """Restores snapshot `bid` (a ferryman id or a restic snapshot id): each folder is
    restored beside the live one, swapped in while the writers are stopped, and the old one
    removed only once they run again."""
    s = await located_site(cfg, pool, env)
    r = config(s)
    found = next((x for x in await snapshots(s) if bid in (x.bid, x.id)), None)
    if found is None:
        raise BadInput(f"no restic snapshot {bid} of {env} in {r.repository}",
                       hint=f"ferryman backups {env}")
    rid = ar.backup_id("r")
    items = wanted_items(s.data)
    folders = await live_folders(s, items)
    missing = [f for f in folders.values() if f not in found.paths]
    if missing:
        raise BadInput(f"snapshot {found.id} holds no {', '.join(missing)}")
    scratch = f"{s.base}/.restore-{rid}"
    olds = [f"{p}.ferryman-old-{rid}" for p in folders.values()]
    stop, start = Quiesce(s).steps("restore")
    steps: list[Step] = []
    for path in folders.values():
        staged, old = f"{path}.ferryman-new", f"{path}.ferryman-old-{rid}"
        fetch = [rc.restore(r, found.id, scratch, path),
                 ["sh", "-c", 'rm -rf -- "$2" && mv -T -- "$1$3" "$2"', "ferryman-stage",
                  scratch, staged, path]]

        async def run_fetch(fetch: list[list[str]] = fetch, path: str = path) -> str:
            for argv in fetch:
                res = await s.host.run(argv, timeout=None)
                if not res.ok:
                    raise CommandFailed(res, f"restoring {path} from {found.id} failed")
            return f"{path} restored beside the live folder"

        async def drop(staged: str = staged) -> None:
            await s.host.run(remove([staged, scratch]), timeout=300)

        steps.append(Step(f"restic restore {path} on {s.label}", run_fetch, drop, host=s.label,
                          undo_if_failed=True, commands=lines(fetch)))
    swaps = []
    for path in folders.values():
        staged, old = f"{path}.ferryman-new", f"{path}.ferryman-old-{rid}"

        async def swap(path: str = path, staged: str = staged, old: str = old) -> str:
            await s.host.run(ar.swap(path, staged, old), timeout=60, check=True)
            return f"{path} now holds snapshot {found.id}"

        async def unswap(path: str = path, staged: str = staged, old: str = old) -> None:
            await s.host.run(ar.unswap(path, staged, old), timeout=60, check=True)

        swaps.append(Step(f"swap in {path} on {s.label}", swap, unswap, host=s.label,
                          undo_if_failed=True, commands=lines([ar.swap(path, staged, old)])))

    async def clean() -> str:
        await s.host.run(remove([*olds, scratch]), timeout=None)
        return f"removed the replaced data ({len(olds)} folder(s))"

    safety_id = ar.backup_id("s")
    safety = rc.backup(r, env, safety_id, list(folders.values()))

    async def keep_safety() -> str:
        res = await s.host.run(safety, timeout=None)
        if not res.ok:
            raise CommandFailed(res, f"the safety snapshot on {s.label} failed")
        return f"safety snapshot {rc.Summary.parse(res.stdout).snapshot} ({safety_id})"

    steps = [*steps, stop,
             Step(f"safety snapshot {safety_id} on {s.label}", keep_safety, host=s.label,
                  commands=lines([safety])),
             *swaps, start,
             Step(f"remove replaced data on {s.label}", clean, host=s.label,
                  commands=lines([remove([*olds, scratch])]))]
    return await run_flow(bus, [s], f"restore {env} {bid} (restic)", steps,
                          {"env": env, "id": bid}, dry_run)
