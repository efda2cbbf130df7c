"""disk: free space on Docker's root against the size of a release (the sum of the service
images' sizes), and on the backup folder against the size of a backup (the data volumes and
paths of ferryman.yml)."""

from __future__ import annotations

from typing import Any

from ..docker import commands as dc
from ..transport import Result
from ..units import human_bytes
from . import commands as cc
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok, warn

NAME = "disk"
FULL_PERCENT = 90


def judge(what: str, path: str, df: tuple[int, int] | None, need: int | None,
          need_what: str) -> tuple[str, str]:
    """(status, summary) for `need` bytes wanted on a filesystem of `df` (total, free)."""
    if df is None:
        return "WARN", f"cannot read the free space of {path}"
    total, free = df
    used = 100 - (free * 100 // total) if total else 100
    room = f"{human_bytes(free)} free of {human_bytes(total)} ({used}% used)"
    if need is not None and free < need:
        return "FAIL", (f"{what} {path}: {room}, but {need_what} needs about "
                        f"{human_bytes(need)}")
    if need is not None and free < 2 * need:
        return "WARN", (f"{what} {path}: {room}; {need_what} needs about {human_bytes(need)}: "
                        "room for one, not two")
    if used >= FULL_PERCENT:
        return "WARN", f"{what} {path}: {room}: nearly full"
    needs = f"; {need_what} needs about {human_bytes(need)}" if need is not None else ""
    return "OK", f"{what} {path}: {room}{needs}"


def sum_sizes(image_facts: str) -> int:
    total = 0
    for line in image_facts.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            total += int(parts[2])
    return total


def sum_du(stdout: str) -> int:
    total = 0
    for line in stdout.splitlines():
        size = line.split("\t", 1)[0].split(" ", 1)[0]
        if size.isdigit():
            total += int(size) * 1024
    return total


def _finding(subject: str, verdict: tuple[str, str], evidence: list[Evidence], fix: str,
             data: dict[str, Any]) -> Finding:
    level, text = verdict
    maker = {"OK": ok, "WARN": warn, "FAIL": fail}[level]
    return maker(NAME, subject, text, evidence=evidence if level != "OK" else evidence[:1],
                 fix=Fix(fix) if level != "OK" else None, data=data)


async def _release_size(ctx: HostContext) -> tuple[int | None, Result | None]:
    _, facts = await ctx.services()
    ids = sorted({f.image_id for f in facts.values() if f.image_id})
    if not ids:
        return None, None
    res = await ctx.cached(dc.image_facts(ids))
    return sum_sizes(res.stdout), res


async def _backup_size(ctx: HostContext) -> tuple[int | None, list[Result]]:
    data = ctx.cfg.data
    if data is None or not (data.volumes or data.paths):
        return None, []
    results = []
    paths = list(data.paths)
    if data.volumes:
        vols = await ctx.run(dc.volume_mountpoints(data.volumes))
        results.append(vols)
        paths += [line.split(" ", 1)[1] for line in vols.stdout.splitlines() if " " in line]
    du = await ctx.run(cc.du(paths), timeout=300)
    results.append(du)
    return sum_du(du.stdout), results


async def run(ctx: HostContext) -> list[Finding]:
    out = []
    _, info = await ctx.docker_info()
    root = info.get("DockerRootDir") or "/var/lib/docker"
    df_res = await ctx.run(dc.disk_free(root))
    need, img_res = await _release_size(ctx)
    ev = [ctx.evidence(df_res)] + ([ctx.evidence(img_res)] if img_res else [])
    out.append(_finding(
        "docker root", judge("Docker's root", root, dc.parse_df(df_res.stdout), need,
                             "a release of the service images"), ev,
        "free space: `docker image prune` (unused images), `docker container prune` (old "
        "stopped containers, set-aside ones included), or grow the disk",
        {"path": root, "free": (dc.parse_df(df_res.stdout) or (0, 0))[1], "need": need}))
    data = ctx.cfg.data
    if data is None:
        return out
    size, results = await _backup_size(ctx)
    bdf = await ctx.run(cc.df_nearest(data.backup_dir))
    parsed = dc.parse_df(bdf.stdout)
    ev = [ctx.evidence(bdf), *(ctx.evidence(r) for r in results)]
    what = "a backup" + (" (database dumps not counted)" if getattr(data, "dumps", None) else "")
    out.append(_finding(
        "backup dir", judge("backup folder", data.backup_dir, parsed, size, what), ev,
        f"free space in {data.backup_dir} (older backups beyond data.keep={data.keep}), or "
        "point data.backup_dir at a larger disk",
        {"path": data.backup_dir, "free": (parsed or (0, 0))[1], "need": size}))
    return out
