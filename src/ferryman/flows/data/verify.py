"""Verify a backup where it lies: digests, and (drill) unpack into scratch and count."""

from __future__ import annotations

from ...data import archive as ar
from ...transport import CommandFailed
from .plan import remove
from .site import DataMismatch, Site


def digest_argv(s: Site, m: ar.Manifest) -> list[str]:
    return ar.sha256([f"{s.folder(m.id)}/{i.archive}" for i in m.items])


async def verify_archives(s: Site, m: ar.Manifest) -> str:
    paths = [f"{s.folder(m.id)}/{i.archive}" for i in m.items]
    res = await s.host.run(digest_argv(s, m), timeout=None)
    got = ar.parse_sha256(res.stdout)
    bad = [f"{i.label}: sha256 {got.get(p, 'missing')} != {i.sha256}"
           for i, p in zip(m.items, paths, strict=True) if got.get(p) != i.sha256]
    if bad:
        raise DataMismatch(f"backup {m.id} on {s.label} is damaged: " + "; ".join(bad),
                           hint="use another backup; this one was changed after it was made")
    return f"{len(paths)} archive(s) match their sha256"


async def unpack_checked(s: Site, argv: list[str], dest: str,
                         item: ar.Item) -> tuple[int, int]:
    """Runs an unpack argv into a fresh `dest`; proves the counts match item's."""
    res = await s.host.run(argv, timeout=None)
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
            archive = f"{s.folder(m.id)}/{item.archive}"
            if item.kind == "dump":
                res = await s.host.run(ar.dump_size(archive, m.compression), timeout=None)
                if not res.ok or int(res.stdout.split()[-1]) != item.bytes:
                    raise DataMismatch(f"{item.label}: {res.stdout.strip() or res.stderr.strip()}"
                                       f" bytes unpacked, manifest says {item.bytes}")
                continue
            dest = f"{scratch}/{item.archive}"
            await unpack_checked(s, ar.unpack(archive, dest, m.compression), dest, item)
    finally:
        await s.host.run(remove([scratch]), timeout=300)
    return f"{len(m.items)} item(s) unpacked and counted: all match"
