"""The watch window: after the switch, the released services are watched for a while (health,
restarts, exits). A failure inside the window fails the release's last step, so the step
runner undoes the release (the previous containers and images come back) and it exits 1.
Ctrl-C ends the watch and keeps the release.

It is the last step of the release, under TO's lock: nobody releases over it meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ..config.schema import Health
from ..docker import commands as dc
from ..docker.inspect import ContainerFacts, parse_containers
from ..errors import HealthFailed
from ..events import EventBus
from ..steps import Step
from ..transport import Host
from .health import last_lines, probe

FAILED_PROBES = 3  # consecutive failed health checks that fail the watch (one may be a blip)


@dataclass
class Watched:
    service: str
    host_label: str
    host: Host
    container: str
    health: Health | None
    id: str = ""
    restarts: int = 0
    started: str = ""
    misses: int = 0

    @property
    def label(self) -> str:
        return f"{self.service} on {self.host_label}"


def restarts_of(facts: ContainerFacts) -> tuple[int, str]:
    """(the engine's restart count, when the container last started)."""
    state = facts.raw.get("State") or {}
    return int(facts.raw.get("RestartCount") or 0), str(state.get("StartedAt") or "")


def problem(w: Watched, facts: ContainerFacts | None) -> str | None:
    """What is wrong with the container now, compared with when the watch began."""
    if facts is None:
        return f"container {w.container} is gone"
    if facts.id != w.id:
        return f"container {w.container} was replaced ({facts.id[:12]}, was {w.id[:12]})"
    restarts, started = restarts_of(facts)
    if restarts > w.restarts or started != w.started:
        return (f"container {w.container} restarted ({restarts - w.restarts} time(s) by its "
                f"restart policy; now {facts.status})")
    if not facts.running:
        return f"container {w.container} is {facts.status} (exit {facts.exit_code})"
    if w.health is not None and w.health.docker and facts.health == "unhealthy":
        return f"container {w.container}: docker health is unhealthy"
    return None


async def _inspect(w: Watched) -> ContainerFacts | None:
    res = await w.host.run(dc.inspect_containers([w.container]), timeout=30)
    return parse_containers(res.stdout).get(w.container)


async def look(w: Watched) -> str | None:
    why = problem(w, await _inspect(w))
    if why is not None:
        return why
    if w.health is not None and w.health.http:
        verdict = await probe(w.host, w.container, w.health)
        w.misses = 0 if verdict.healthy else w.misses + 1
        if w.misses >= FAILED_PROBES:
            return f"{verdict.detail} ({w.misses} checks in a row)"
    return None


def poll_interval(window: float) -> float:
    return max(1.0, min(5.0, window / 20))


def say_every(window: float) -> float:
    return max(5.0, min(60.0, window / 10))


def watch_step(env: str, watched: list[Watched], window: float, bus: EventBus,
               result: dict[str, Any]) -> Step:
    """`result` receives the watch's outcome for the release record."""
    names = ", ".join(w.label for w in watched)

    async def run() -> str:
        for w in watched:
            facts = await _inspect(w)
            if facts is None:
                raise HealthFailed(f"{w.label}: container {w.container} is gone")
            w.id = facts.id
            w.restarts, w.started = restarts_of(facts)
        began = time.monotonic()
        result.update(window=window, result="watching")
        bus.info(f"watching {names} for {window:g}s; Ctrl-C ends the watch and keeps the "
                 "release")
        next_say = began + say_every(window)
        try:
            while (left := began + window - time.monotonic()) > 0:
                for w in watched:
                    why = await look(w)
                    if why is not None:
                        seen = round(time.monotonic() - began, 1)
                        result.update(result="failed", after=seen, service=w.service,
                                      host=w.host_label, detail=why)
                        raise HealthFailed(
                            f"{w.label} failed {seen:g}s into the {window:g}s watch: {why}; "
                            "rolling the release back", host=w.host_label,
                            evidence=await last_lines(w.host, w.container))
                now = time.monotonic()
                if now >= next_say:
                    bus.info(f"watch: {left:.0f}s left, {names} healthy", left=round(left))
                    next_say = now + say_every(window)
                await asyncio.sleep(min(poll_interval(window), max(left, 0.0)))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            seen = round(time.monotonic() - began, 1)
            result.update(result="ended", after=seen)
            bus.warn(f"watch ended by the operator after {seen:g}s of {window:g}s: the "
                     "release is kept, nothing is rolled back")
            return f"ended by the operator after {seen:g}s; the release is kept"
        result.update(result="ok", after=window)
        return f"{names}: healthy for {window:g}s, no restart, no exit"

    return Step(f"watch {env} for {window:g}s", run,
                params={"services": [w.label for w in watched], "window": window,
                        "interval": poll_interval(window)})
