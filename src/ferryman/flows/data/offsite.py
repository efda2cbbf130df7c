"""Off-site copies: each backup streamed from the data host to the first host of
`data.offsite.env`, through this process's memory (never the operator's disk), hashed as it
is written and read back there, and published only once every sha256 matches the manifest.

Layout on the off-site host: DIR/PROJECT/ENV/ID/ (the archives and manifest.json, as on the
data host); a copy on its way is DIR/PROJECT/ENV/.ID.part (hidden: listing never sees it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...config import Config
from ...config.backups import Offsite
from ...data import archive as ar
from ...errors import BadInput
from ...events import EventBus
from ...hosts import HostPool
from ...state import write_file
from ...steps import Outcome, Step
from ...transport import CommandFailed, Host, pipe
from ...transport.base import short_command
from .plan import remove
from .run import run_flow
from .s3store import S3Vault
from .site import DataMismatch, Site, located_site
from .store import read_manifest


@dataclass
class Vault:
    """Where ENV's off-site copies lie: a folder on the off-site environment's first host."""

    spec: Offsite
    env: str  # the environment whose backups these are
    project: str
    label: str
    host: Host

    @property
    def base(self) -> str:
        return f"{self.spec.dir.rstrip('/')}/{self.project}/{self.env}"

    def folder(self, bid: str) -> str:
        return f"{self.base}/{bid}"

    def part(self, bid: str) -> str:
        return f"{self.base}/.{bid}.part"


AnyVault = Vault | S3Vault


def vault(cfg: Config, pool: HostPool, env: str) -> AnyVault:
    spec = cfg.data.offsite if cfg.data else None
    if spec is None:
        raise BadInput(f"{cfg.source or 'ferryman.yml'}: data.offsite is not set: there is no "
                       "off-site place for copies", hint="set data.offsite.env and dir")
    if spec.s3 is not None:
        return S3Vault(spec, env, cfg.project)
    assert spec.env is not None
    if spec.env == env:
        raise BadInput(f"data.offsite.env is '{env}' itself: an off-site copy must leave it")
    label = pool.env(spec.env).hosts[0].label
    return Vault(spec, env, cfg.project, label, pool.host(spec.env, label))


def files(m: ar.Manifest) -> list[str]:
    return [i.archive for i in m.items]


def publish(part: str, final: str) -> list[str]:
    """Renames a checked copy into place; refuses to replace one already there."""
    return ["sh", "-c", '[ ! -e "$2" ] || { echo "$2 exists" >&2; exit 1; }; mv -T -- "$1" "$2"',
            "ferryman-publish", part, final]


async def _carry(src: Host, src_path: str, dst: Host, dst_path: str, compression: str,
                 progress: Callable[[int], None] | None) -> tuple[str, int]:
    """One file src -> dst, written and hashed at the far end: (sha256, bytes)."""
    res = await pipe(src, ["cat", "--", src_path], dst, ar.receive(dst_path, "", compression),
                     on_progress=progress)
    if not res.ok:
        raise CommandFailed(res.source if not res.source.ok else res.sink,
                            f"copying {src_path} failed")
    _, _, sha, size = ar.parse_pack(res.sink.stdout)
    return sha, size


async def _prove(host: Host, label: str, folder: str, m: ar.Manifest) -> None:
    """Reads every archive back from `folder` on `host`; each sha256 must be the manifest's."""
    paths = [f"{folder}/{i.archive}" for i in m.items]
    got = ar.parse_sha256((await host.run(ar.sha256(paths), timeout=None)).stdout)
    bad = [f"{i.label}: sha256 {got.get(p, 'missing')} != {i.sha256}"
           for i, p in zip(m.items, paths, strict=True) if got.get(p) != i.sha256]
    if bad:
        raise DataMismatch(f"backup {m.id} in {folder} on {label}: " + "; ".join(bad))


async def copy(s: Site, v: Vault, m: ar.Manifest, bus: EventBus) -> str:
    """Streams backup m to the vault and proves it there; returns what it did."""
    part = v.part(m.id)
    await v.host.run(remove([part]), timeout=120, check=True)
    total = 0
    for item in m.items:
        sha, size = await _carry(s.host, f"{s.folder(m.id)}/{item.archive}", v.host,
                                 f"{part}/{item.archive}", m.compression,
                                 lambda n, a=item.archive: bus.emit(
                                     "progress", task=a, description=f"off-site {a}",
                                     completed=n, total=None))
        if (sha, size) != (item.sha256, item.archive_bytes):
            raise DataMismatch(f"{item.label}: {size} bytes with sha256 {sha} reached {v.label},"
                               f" {s.label} holds {item.archive_bytes} with sha256 {item.sha256}")
        total += size
    await v.host.run(write_file(f"{part}/{ar.MANIFEST}"), input=m.to_json().encode(),
                     timeout=30, check=True)
    await _prove(v.host, v.label, part, m)
    await v.host.run(publish(part, v.folder(m.id)), timeout=60, check=True)
    return (f"{total} bytes in {len(m.items)} archive(s) {s.label} -> {v.label}:"
            f"{v.folder(m.id)}, sha256 read back there: all match")


def copy_step(s: Site, v: AnyVault, bid: str, archives: list[str],
              manifest: Callable[[], ar.Manifest | None], bus: EventBus) -> Step:
    """manifest: the backup to copy, read when the step runs (a snapshot made by the flow)."""

    async def run() -> str:
        m = manifest()
        if m is None:
            raise RuntimeError("no backup to copy: the step that makes it has not run")
        return await (v.copy(s, m, bus) if isinstance(v, S3Vault) else copy(s, v, m, bus))

    if isinstance(v, S3Vault):
        async def forget() -> None:
            await v.remove(bid)

        return Step(f"copy backup {bid} off-site to {v.label}", run, forget, host=s.label,
                    undo_if_failed=True, params={"from": s.folder(bid), "to": v.folder(bid)},
                    commands=[f"{s.label}: cat -- {s.folder(bid)}/{a} | this machine: S3 "
                              f"upload {v.folder(bid)}{a}" for a in archives])

    async def undo() -> None:
        await v.host.run(remove([v.part(bid), v.folder(bid)]), timeout=300)

    part = v.part(bid)
    lines = [f"{s.label}: cat -- {s.folder(bid)}/{a} | {v.label}: "
             f"{short_command(ar.receive(f'{part}/{a}', '', 'none'))}" for a in archives]
    return Step(f"copy backup {bid} off-site to {v.label}", run, undo,
                undo_data={"kind": "commands", "host": v.label,
                           "argvs": [remove([v.part(bid), v.folder(bid)])]},
                params={"from": s.folder(bid), "to": v.folder(bid)}, host=v.label,
                undo_if_failed=True,
                commands=[*lines, f"{v.label}: {short_command(publish(part, v.folder(bid)))}"])


async def list_copies(v: AnyVault) -> list[ar.Manifest]:
    if isinstance(v, S3Vault):
        return await v.list()
    return ar.parse_manifests((await v.host.run(ar.list_manifests(v.base), timeout=60)).stdout)


async def verify_copy(v: AnyVault, m: ar.Manifest) -> str:
    if isinstance(v, S3Vault):
        return await v.verify(m)
    await _prove(v.host, v.label, v.folder(m.id), m)
    return f"off-site copy of {m.id} on {v.label}: {len(m.items)} archive(s) match their sha256"


async def prune_copies(v: AnyVault, bus: EventBus) -> list[str]:
    """Off-site retention: the newest `data.offsite.keep` copies (each proven on arrival)."""
    if isinstance(v, S3Vault):
        return await v.prune(bus)
    old = ar.beyond_retention(await list_copies(v), v.spec.keep, None)
    if old:
        await v.host.run(remove([v.folder(m.id) for m in old]), timeout=300, check=True)
        bus.info(f"removed {len(old)} off-site copie(s) beyond keep={v.spec.keep} on {v.label}: "
                 + ", ".join(m.id for m in old))
    return [m.id for m in old]


async def fetch(s: Site, v: AnyVault, bid: str, bus: EventBus) -> ar.Manifest:
    """Brings an off-site copy back onto the data host (its own copy is gone), proven by
    sha256 there before it is put where restore looks."""
    if isinstance(v, S3Vault):
        return await v.fetch(s, bid, bus)
    if not ar.ID_PATTERN.match(bid):
        raise BadInput(f"'{bid}' is not a backup id (like b20261123-101500)")
    res = await v.host.run(["cat", f"{v.folder(bid)}/{ar.MANIFEST}"], timeout=30)
    if not res.ok:
        known = [m.id for m in await list_copies(v)]
        raise BadInput(f"no off-site copy of {bid} on {v.label} (has: "
                       f"{', '.join(known[-5:]) or 'none'})", hint=f"ferryman backups {s.env} "
                       "--offsite")
    m = ar.Manifest.parse(res.stdout)
    here = await s.host.run(["test", "-e", s.folder(bid)], timeout=30)
    if here.ok:
        raise BadInput(f"{s.label} still holds backup {bid} in {s.folder(bid)}: restore it "
                       "without --from-offsite")
    part = f"{s.base}/.{bid}.part"
    await s.host.run(remove([part]), timeout=120, check=True)
    try:
        for item in m.items:
            sha, size = await _carry(v.host, f"{v.folder(bid)}/{item.archive}", s.host,
                                     f"{part}/{item.archive}", m.compression, None)
            if (sha, size) != (item.sha256, item.archive_bytes):
                raise DataMismatch(f"{item.label}: {size} bytes with sha256 {sha} reached "
                                   f"{s.label}, the manifest says {item.archive_bytes} with "
                                   f"sha256 {item.sha256}")
        await s.host.run(write_file(f"{part}/{ar.MANIFEST}"), input=res.stdout.encode(),
                         timeout=30, check=True)
        await _prove(s.host, s.label, part, m)
        await s.host.run(publish(part, s.folder(bid)), timeout=60, check=True)
    except BaseException:
        await s.host.run(remove([part]), timeout=120)
        raise
    bus.info(f"fetched off-site copy {bid} from {v.label} into {s.folder(bid)}: sha256 match")
    return m


async def copy_flow(cfg: Config, pool: HostPool, env: str, bid: str, bus: EventBus,
                    dry_run: bool = False) -> Outcome:
    """Copies backup `bid` of env off-site, under env's lock (retention cannot remove it
    meanwhile), then applies the off-site retention."""
    s = await located_site(cfg, pool, env)
    m = await read_manifest(s, bid)
    v = vault(cfg, pool, env)
    outcome = await run_flow(bus, [s], f"copy {env} {bid} off-site",
                             [copy_step(s, v, bid, files(m), lambda: m, bus)],
                             {"env": env, "id": bid, "to": v.label}, dry_run)
    if outcome.ok and not dry_run:
        await prune_copies(v, bus)
    return outcome
