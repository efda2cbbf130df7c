"""The backups kept on a data host: list, read, prune; copied to and from the operator's
disk; and the mounts of the app's containers, to choose what to back up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...config import Config
from ...data import archive as ar
from ...docker import commands as dc
from ...docker.inspect import parse_containers
from ...errors import BadInput
from ...events import EventBus
from ...hosts import HostPool
from ...state import now_iso, operator, write_file
from .mask import refuse_unmasked
from .plan import remove
from .site import Site
from .verify import drill, verify_archives

CHUNK = 1 << 20


async def list_backups(s: Site) -> list[ar.Manifest]:
    return ar.parse_manifests((await s.host.run(ar.list_manifests(s.base), timeout=60)).stdout)


async def record_check(s: Site, bid: str, kind: str, ok: bool, said: str) -> None:
    """Keeps the outcome of a verify or drill beside the backups, so every operator sees
    which backups were proven readable, and when."""
    line = json.dumps({"id": bid, "kind": kind, "ok": ok, "said": said, "when": now_iso(),
                       "who": operator()}, ensure_ascii=False)
    await s.host.run(ar.append_check(s.base, line), timeout=30, check=True)


async def read_checks(s: Site) -> dict[str, dict[str, object]]:
    res = await s.host.run(ar.read_checks(s.base), timeout=30)
    return ar.parse_checks(res.stdout) if res.ok else {}


async def checked(s: Site, m: ar.Manifest, drill_too: bool) -> list[str]:
    """verify (and drill) backup m; the outcome is recorded whatever it is."""
    said: list[str] = []
    kind = "drill" if drill_too else "verify"
    try:
        said.append(await verify_archives(s, m))
        if drill_too:
            said.append(await drill(s, m))
    except Exception as exc:
        await record_check(s, m.id, kind, False, str(exc))
        raise
    await record_check(s, m.id, kind, True, "; ".join(said))
    return said


async def prune(s: Site, bus: EventBus) -> list[str]:
    old = ar.beyond_retention(await list_backups(s), s.data.keep, s.data.keep_days,
                              checks=await read_checks(s))
    for m in old:
        await s.host.run(remove([s.folder(m.id)]), timeout=300)
    if old:
        bus.info(f"removed {len(old)} backup(s) beyond keep={s.data.keep}"
                 + (f", keep_days={s.data.keep_days:g}" if s.data.keep_days else "")
                 + f" on {s.label}: "
                 + ", ".join(m.id for m in old))
    return [m.id for m in old]


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


def _files(m: ar.Manifest) -> list[str]:
    return [*(i.archive for i in m.items), ar.MANIFEST]


async def download(s: Site, m: ar.Manifest, into: Path) -> Path:
    """Copies backup m from the data host into INTO/ID on this machine."""
    dest = into / m.id
    dest.mkdir(parents=True, exist_ok=True)
    for name in _files(m):
        proc = await s.host.open(["cat", f"{s.folder(m.id)}/{name}"])
        with (dest / name).open("wb") as fh:
            while chunk := await proc.read(CHUNK):
                fh.write(chunk)
        res = await proc.wait()
        if not res.ok:
            raise BadInput(f"cannot download {name} from {s.label}: {res.stderr.strip()}")
    return dest


async def upload(s: Site, src: Path) -> str:
    """Copies a downloaded backup folder onto the data host; returns its id."""
    manifest_file = src / ar.MANIFEST
    if not manifest_file.is_file():
        raise BadInput(f"{src} holds no {ar.MANIFEST}: not a downloaded backup folder")
    m = ar.Manifest.parse(manifest_file.read_text())
    refuse_unmasked(s.cfg, s.env, m)
    for name in _files(m):
        if not (src / name).is_file():
            raise BadInput(f"{src / name} is missing")
    for name in _files(m):
        proc = await s.host.open(write_file(f"{s.folder(m.id)}/{name}"))
        with (src / name).open("rb") as fh:
            while chunk := fh.read(CHUNK):
                await proc.write(chunk)
        await proc.close_stdin()
        res = await proc.wait()
        if not res.ok:
            raise BadInput(f"cannot upload {name} to {s.label}: {res.stderr.strip()}")
    return m.id


@dataclass
class Mount:
    host: str
    container: str
    type: str | None
    name: str | None  # the volume name, or the bind's host folder
    destination: str | None
    rw: bool | None


async def discover(cfg: Config, pool: HostPool, env: str) -> list[Mount]:
    """What the app's containers (services and data.stop) mount, on every host of env."""
    await pool.resolve(env)
    rows = []
    for label, host in pool.hosts(env):
        # Services named by compose labels have their own container name on each host.
        here = [p.container for p in pool.placements(env) if p.host == label]
        stop = [next((p.container for p in pool.placements(env, [n]) if p.host == label), n)
                if n in cfg.services else n for n in (cfg.data.stop if cfg.data else [])]
        names = list(dict.fromkeys(here + stop))
        facts = parse_containers((await host.run(dc.inspect_containers(names),
                                                 timeout=60)).stdout)
        for name, f in facts.items():
            for m in f.raw.get("Mounts") or []:
                rows.append(Mount(label, name, m.get("Type"), m.get("Name") or m.get("Source"),
                                  m.get("Destination"), m.get("RW")))
    return rows
