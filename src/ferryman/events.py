"""Events from flows to whoever listens: the terminal view, the log files, later a web page.

An event is a kind plus plain data, so every listener can render or serialise it as it likes.
Secrets are masked here, once, before any listener sees the event.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .redact import Redactor, raw_output
from .transport.base import CommandFailed, Host, Process, Result

# Kinds: flow_start, flow_end, step_start, step_ok, step_fail, undo_start, undo_ok, undo_fail,
# command, progress, info, warn.


@dataclass
class Event:
    kind: str
    flow: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


class Listener(Protocol):
    def handle(self, event: Event) -> None: ...


class EventBus:
    def __init__(self, flow: str, redactor: Redactor | None = None) -> None:
        self.flow = flow
        self.redactor = redactor or Redactor()
        self.listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, kind: str, **data: Any) -> None:
        event = Event(kind, self.flow, self.redactor.data(data))
        for listener in self.listeners:
            listener.handle(event)

    def info(self, message: str, **data: Any) -> None:
        self.emit("info", message=message, **data)

    def warn(self, message: str, **data: Any) -> None:
        self.emit("warn", message=message, **data)


class Collector:
    """Keeps every event in memory; used by tests and by the JSON output of flows."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class ObservedHost:
    """Wraps a host so that every command it runs is recorded as a `command` event."""

    def __init__(self, host: Host, bus: EventBus) -> None:
        self.inner = host
        self.bus = bus
        self.label = host.label

    def _record(self, result: Result) -> None:
        data: dict[str, Any] = {
            "host": result.host,
            "command": result.command_line,
            "exit": result.exit_status,
            "duration": round(result.duration, 3),
        }
        if result.timed_out:
            data["timed_out"] = True
        if not result.ok:
            data["stdout"] = raw_output(result.stdout, self.bus.redactor)
            data["stderr"] = raw_output(result.stderr, self.bus.redactor)
        self.bus.emit("command", **data)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: bytes | None = None,
        check: bool = False,
    ) -> Result:
        result = await self.inner.run(argv, timeout=timeout, input=input)
        self._record(result)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def open(self, argv: Sequence[str], *, idle_timeout: float | None = None
                   ) -> Process:
        self.bus.emit("command", host=self.label, command=shlex.join(list(argv)), stream=True)
        return await self.inner.open(argv, idle_timeout=idle_timeout)

    async def close(self) -> None:
        await self.inner.close()
