"""Stopping and starting the business containers around a snapshot or an apply.

They are stopped, and verified stopped, before a byte is read; started again in reverse
order, always, also when the snapshot failed (the stop step's undo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...docker import commands as dc
from ...docker.inspect import parse_containers
from ...errors import PreconditionFailed
from ...steps import Step, note_undo
from ...transport.base import short_command
from ...undo import UndoContext, undoer
from ..health import wait_healthy
from .site import Site


@dataclass
class Quiesce:
    site: Site
    stopped: list[str] = field(default_factory=list)  # the ones we stopped, in stop order
    # The ones found running, journalled before the first stop: from another process, abort
    # starts exactly those (and stops them again if the start step was cut).
    running: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.site.stop

    async def stop(self) -> str:
        names = self.names
        if not names:
            return "no containers to stop (data.stop is empty)"
        host = self.site.host
        now = parse_containers((await host.run(dc.inspect_containers(names), timeout=60)).stdout)
        self.running[:] = [n for n in names if n in now
                           and now[n].status in ("running", "restarting", "paused")]
        await note_undo()
        for name in names:
            if name in now and now[name].status in ("running", "restarting", "paused"):
                await host.run(dc.stop_container(name), timeout=180, check=True)
                self.stopped.append(name)
        # Verified, not assumed: a restart policy or an operator may have started one again.
        after = parse_containers((await host.run(dc.inspect_containers(names),
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
        by_container = {c: cfg.services[s] for c, s in self.site.service_containers.items()}
        for name in reversed(self.stopped):
            await self.site.host.run(dc.start_container(name), timeout=180, check=True)
        for name in reversed(self.stopped):
            svc = by_container.get(name)
            await wait_healthy(self.site.host, svc.name if svc else name, name,
                               svc.health if svc else None, env=self.site.env)
        return f"started {', '.join(reversed(self.stopped)) or 'nothing'}"

    async def stop_again(self) -> None:
        for name in self.stopped:
            await self.site.host.run(dc.stop_container(name), timeout=180)

    def steps(self, what: str) -> tuple[Step, Step]:
        names, label = self.names, self.site.label
        both = {"host": label, "names": self.running,
                "services": self.site.service_containers}
        # The dry run shows every candidate; the run skips those already stopped.
        stop = Step(f"stop business containers on {label}", self.stop, self.start,
                    undo_data={"kind": "start-containers", **both},
                    params={"order": names, "keep_running": self.site.data.never_stop},
                    host=label, undo_if_failed=True,
                    commands=[short_command(dc.stop_container(n)) for n in names])
        start = Step(f"start business containers on {label}", self.start,
                     self.stop_again, undo_data={"kind": "stop-containers", **both},
                     params={"order": list(reversed(names)), "after": what},
                     host=label, undo_if_failed=True,
                     commands=[short_command(dc.start_container(n)) for n in reversed(names)])
        return stop, start


@undoer("start-containers")
async def _undo_stop(ctx: UndoContext, d: dict[str, Any]) -> str:
    """From a journal: start, in reverse order, those that ran before and are stopped now."""
    host = ctx.host(d["host"])
    now = parse_containers((await host.run(dc.inspect_containers(d["names"]),
                                           timeout=60)).stdout)
    todo = [n for n in reversed(d["names"]) if n in now and not now[n].running]
    for name in todo:
        await host.run(dc.start_container(name), timeout=180, check=True)
    services = d.get("services") or {}
    for name in todo:
        svc = ctx.cfg.services.get(services.get(name, ""))
        await wait_healthy(host, svc.name if svc else name, name, svc.health if svc else None,
                           env=ctx.env)
    return f"started {', '.join(todo) or 'nothing'}"


@undoer("stop-containers")
async def _undo_start(ctx: UndoContext, d: dict[str, Any]) -> None:
    host = ctx.host(d["host"])
    for name in d["names"]:
        await host.run(dc.stop_container(name), timeout=180)
