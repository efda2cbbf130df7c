"""Release hooks: `before_switch` (migrations) and `after_switch`, each run once per release in
a one-off container from the new image on one host of TO; and the backup a data-changing hook
makes the release take first.

A hook's output streams into the step log line by line; past its timeout the container is
removed. A failing `before_switch` fails the release before any container changes, and the
undos put TO back as it was; the backup taken for it is kept, whatever happens, and named.
"""

from __future__ import annotations

import asyncio
import math
import shlex
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..config.schema import Hook
from ..data import archive as ar
from ..docker import hooks as dh
from ..errors import FlowFailed
from ..events import EventBus
from ..hosts import HostPool
from ..steps import Step
from ..transport import Host
from ..undo import UndoContext, bound, undoer
from .data.plan import DataState, lines
from .data.quiesce import Quiesce
from .data.site import located_site
from .data.snapshot import plan as plan_snapshot
from .data.snapshot import snapshot

WHEN = ("before_switch", "after_switch")
TAIL = 20  # output lines kept as the evidence of a failed hook


@dataclass
class HookRun:
    """One hook of one service, planned: where it runs and the exact argv."""

    service: str
    when: str
    host_label: str
    host: Host
    hook: Hook
    argv: list[str]
    name: str  # the one-off container's name

    @property
    def label(self) -> str:
        return f"{self.when} {self.service}"


def hooked(cfg: Config, services: list[str], when: str) -> dict[str, Hook]:
    out = {}
    for name in services:
        hook = getattr(cfg.services[name], when)
        if hook is not None:
            out[name] = hook
    return out


def changes_data(cfg: Config, services: list[str]) -> list[str]:
    """`service.when` of every hook of these services that declares changes_data."""
    return [f"{s}.{w}" for w in WHEN for s, h in hooked(cfg, services, w).items()
            if h.changes_data]


async def stream_hook(run: HookRun, bus: EventBus) -> tuple[int, list[str]]:
    """Runs the hook, each output line an info event; (exit status, last lines)."""
    tail: list[str] = []
    # A hook may rightly stay quiet for long: its own timeout bounds it, not the stream's.
    proc = await run.host.open(dh.wrapped(run.argv), idle_timeout=math.inf)
    buf = b""

    def say(raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        bus.info(f"{run.label} | {line}", hook=run.label, line=line)
        tail.append(line)
        del tail[:-TAIL]

    try:
        async with asyncio.timeout(run.hook.timeout):
            while chunk := await proc.read(65536):
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    say(raw)
            if buf:
                say(buf)
            res = await proc.wait()
    except TimeoutError:
        await proc.abort()
        await run.host.run(dh.remove_hook(run.name), timeout=120)
        raise FlowFailed(f"{run.label} on {run.host_label} ran past its timeout of "
                         f"{run.hook.timeout:g}s; its container was removed",
                         host=run.host_label, evidence="\n".join(tail),
                         hint=f"raise services.{run.service}.{run.when}.timeout") from None
    except BaseException:
        await proc.abort()
        await run.host.run(dh.remove_hook(run.name), timeout=120)
        raise
    return res.exit_status if res.exit_status is not None else -1, tail


def hook_step(run: HookRun, bus: EventBus, ctx: UndoContext) -> Step:
    async def go() -> str:
        status, tail = await stream_hook(run, bus)
        if status != 0:
            raise FlowFailed(f"{run.label} failed on {run.host_label} (exit {status})",
                             host=run.host_label, evidence="\n".join(tail),
                             hint="the lines above are the hook's own output")
        return f"exit 0, {len(tail)} line(s) of output"

    # Undo: a hook cut short (the operator's machine died) leaves its container behind.
    data = {"kind": "hook", "host": run.host_label, "name": run.name}
    return Step(f"{run.when} hook of {run.service} on {run.host_label}", go,
                bound(ctx, data), undo_data=data, undo_if_failed=True,
                params={"run": run.hook.run, "timeout": run.hook.timeout,
                        "changes_data": run.hook.changes_data},
                host=run.host_label, commands=[shlex.join(run.argv)])


async def backup_steps(cfg: Config, pool: HostPool, env: str, rid: str,
                       why: list[str], state: DataState) -> tuple[list[Step], str]:
    """The stop-clean backup of `data` on TO, kept whatever the release does: the way back
    from what a hook does to the data. Returns the steps and the backup's id."""
    s = await located_site(cfg, pool, env)
    bid = ar.backup_id("b")
    p = await plan_snapshot(s, bid, "backup")  # a missing volume or folder: refuse now
    q = Quiesce(s)
    stop, start = q.steps(f"the backup before release {rid}")

    async def run() -> str:
        m = await snapshot(s, p, q.stopped)
        state.snapshot = m
        return (f"backup {bid}: {len(m.items)} item(s), {m.total_bytes} bytes in "
                f"{p.folder} (kept: rollback of {rid} restores it)")

    snap = Step(f"backup {env} on {s.label} before the hooks", run,
                params={"id": bid, "because": why, "volumes": s.data.volumes,
                        "paths": s.data.paths, "into": p.folder},
                host=s.label, commands=lines([*p.argvs]))
    return [stop, snap, start], bid


def describe(runs: list[HookRun]) -> list[dict[str, Any]]:
    """What the release record keeps of its hooks."""
    return [{"service": r.service, "when": r.when, "host": r.host_label, "run": r.hook.run,
             "changes_data": r.hook.changes_data} for r in runs]


@undoer("hook")
async def _undo_hook(ctx: UndoContext, d: dict[str, Any]) -> None:
    """Removes the hook's one-off container if it is still there (not checked: usually gone).
    What the hook did to the data stays: the backup taken before it is the way back."""
    await ctx.host(d["host"]).run(dh.remove_hook(d["name"]), timeout=120)
