"""After a compose release, the project's own files name the new image (the `.env` variable
the `image:` is made of, else the `image:` line), so a plain `docker compose up -d` in the
project directory keeps it. The file is copied aside first; the undo, and rollback, put that
copy back (byte for byte) when the file is still as the release left it."""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from ..docker.composefile import Edit, durable_edit
from ..docker.inspect import ComposeInfo
from ..state import ABSENT, read_file, state_dir, write_file
from ..steps import Step
from ..transport import Host
from ..undo import UndoContext, bound, undoer


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def read_text(host: Host, path: str) -> str | None:
    res = await host.run(read_file(path), timeout=30)
    if res.exit_status == ABSENT:
        return None
    if not res.ok:
        raise_for = res.stderr.strip() or f"exit {res.exit_status}"
        raise OSError(f"cannot read {path} on {host.label}: {raise_for}")
    return res.stdout


async def plan_edit(host: Host, info: ComposeInfo, project: str, new_ref: str) -> Edit | str:
    """The edit for `info`'s service on this host, or why there is none."""
    own = [f for f in info.config_files if not f.startswith(state_dir(project) + "/")]
    files = {f: await read_text(host, f) for f in own}
    env_path = f"{info.working_dir.rstrip('/')}/.env"
    return durable_edit(files, env_path, await read_text(host, env_path), info.service,
                        new_ref)


def backup_path(path: str, rid: str) -> str:
    return f"{path}.ferryman-{rid}.bak"


def persist_step(ctx: UndoContext, host: Host, host_label: str, service: str, edit: Edit,
                 rid: str, what: str = "keep") -> Step:
    backup = backup_path(edit.path, rid) if edit.old is not None else None
    copy = ["cp", "-p", "--", edit.path, backup] if backup else None

    # An empty text is a file that was absent before the release: removed again.
    write = ["rm", "-f", "--", edit.path] if not edit.new else write_file(edit.path)

    async def run() -> str:
        if copy:
            await host.run(copy, timeout=30, check=True)
        await host.run(write, input=edit.new.encode() if edit.new else None, timeout=30,
                       check=True)
        return edit.how + (f" (the file before: {backup})" if backup else " (a new file)")

    data = {"kind": "persist", "host": host_label, "path": edit.path, "backup": backup}
    return Step(f"{what} {service} in its compose project on {host_label}", run,
                bound(ctx, data), undo_data=data, params={"file": edit.path, "backup": backup},
                host=host_label, undo_if_failed=True,
                commands=[*([shlex.join(copy)] if copy else []),
                          f"write {edit.path}: {edit.how}" if edit.new else shlex.join(write)])


@undoer("persist")
async def _undo_persist(ctx: UndoContext, d: dict[str, Any]) -> None:
    """The file as it was: its copy back, or gone again when there was none."""
    host = ctx.host(d["host"])
    if d.get("backup"):
        await host.run(["cp", "-p", "--", d["backup"], d["path"]], timeout=30, check=True)
    else:
        await host.run(["rm", "-f", "--", d["path"]], timeout=30, check=True)


async def rollback_edit(host: Host, info: ComposeInfo, project: str, previous_ref: str,
                        persisted: dict[str, Any]) -> Edit | str:
    """Rollback: the release's copy back when the file is still as the release wrote it;
    else (edited since) the file made to name the previous image again."""
    path = persisted["path"]
    now = await read_text(host, path)
    if now is not None and digest(now) == persisted.get("sha256"):
        backup = persisted.get("backup")
        before = await read_text(host, backup) if backup else ""
        if before is not None:
            return Edit(path, now, before, f"{path} as before release {persisted['rid']}"
                        + (f" (from {backup})" if backup else " (absent before: removed)"))
    return await plan_edit(host, info, project, previous_ref)
