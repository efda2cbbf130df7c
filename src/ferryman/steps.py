"""The step runner: a flow is an ordered list of named steps, each with its undo.

The runner announces `step N/M`, records parameters and timings, and on failure records the raw
output, runs the undos of the finished steps in reverse, and says what each host is left in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .events import EventBus
from .redact import raw_output
from .transport.base import CommandFailed, TransportError

Action = Callable[[], Awaitable[Any]]


@dataclass
class Step:
    name: str
    run: Action
    undo: Action | None = None
    params: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # the host this step changes, for the state report
    commands: list[str] = field(default_factory=list)  # planned command lines, for --dry-run
    undo_if_failed: bool = False  # the undo also cleans up after this step's own failure


@dataclass
class Outcome:
    flow: str
    ok: bool
    duration: float
    results: dict[str, Any] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    undone: list[str] = field(default_factory=list)
    undo_failed: list[str] = field(default_factory=list)
    host_state: dict[str, str] = field(default_factory=dict)
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        """1 when a flow failed; the error's own code (3: a host precondition) when it
        failed before changing anything; 3 when a host was lost and what was done there could
        not be undone."""
        if self.ok:
            return 0
        if isinstance(self.exception, TransportError) and (self.undo_failed or not self.undone):
            return 3
        code = getattr(self.exception, "exit_code", 1)
        return code if not self.undone and not self.undo_failed else 1


def describe_error(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"error": str(exc) or type(exc).__name__}
    if isinstance(exc, CommandFailed):
        r = exc.result
        data.update(
            host=r.host, command=r.command_line, short_command=r.short_command,
            exit=r.exit_status, stdout=r.stdout, stderr=r.stderr,
        )
    if isinstance(exc, TransportError):
        data["host"] = exc.host
        if exc.hint:
            data["hint"] = exc.hint
    evidence = getattr(exc, "evidence", None)
    if evidence and "stdout" not in data:
        data["stdout"] = evidence
    hint = getattr(exc, "hint", None)
    if hint and "hint" not in data:
        data["hint"] = hint
    return data


async def run_steps(
    bus: EventBus, steps: list[Step], params: dict[str, Any] | None = None,
    *, dry_run: bool = False,
) -> Outcome:
    total = len(steps)
    started = time.monotonic()
    bus.emit("flow_start", steps=[s.name for s in steps], params=params or {}, dry_run=dry_run)
    outcome = Outcome(bus.flow, ok=True, duration=0.0)
    if dry_run:
        for n, step in enumerate(steps, 1):
            bus.emit("step_plan", n=n, m=total, name=step.name, params=step.params,
                     commands=step.commands, host=step.host)
        outcome.duration = time.monotonic() - started
        bus.emit("flow_end", ok=True, dry_run=True, duration=round(outcome.duration, 3))
        return outcome

    done: list[Step] = []
    for n, step in enumerate(steps, 1):
        bus.emit("step_start", n=n, m=total, name=step.name, params=step.params, host=step.host)
        t0 = time.monotonic()
        try:
            outcome.results[step.name] = await step.run()
        except Exception as exc:
            err = describe_error(exc)
            for key in ("stdout", "stderr"):
                if key in err:
                    err[key] = raw_output(err[key], bus.redactor)
            bus.emit("step_fail", n=n, m=total, name=step.name, params=step.params,
                     duration=round(time.monotonic() - t0, 3), **err)
            outcome.ok = False
            outcome.failed_step = f"step {n}/{total} {step.name}"
            outcome.error = err["error"]
            outcome.exception = exc
            if step.undo_if_failed and step.undo is not None:
                done.append(step)
            await _undo(bus, done, outcome)
            break
        result = outcome.results[step.name]
        bus.emit("step_ok", n=n, m=total, name=step.name,
                 duration=round(time.monotonic() - t0, 3),
                 **({"result": result} if isinstance(result, str) else {}))
        done.append(step)
    outcome.duration = time.monotonic() - started
    for step in done:
        if step.host and step.host not in outcome.host_state:
            outcome.host_state[step.host] = "changed" if outcome.ok else "restored"
    for failed in outcome.undo_failed:
        host = next((s.host for s in done if s.name == failed), None)
        if host:
            outcome.host_state[host] = f"NEEDS ATTENTION: undo of '{failed}' failed"
    bus.emit(
        "flow_end", ok=outcome.ok, duration=round(outcome.duration, 3),
        failed_step=outcome.failed_step, error=outcome.error, undone=outcome.undone,
        undo_failed=outcome.undo_failed, host_state=outcome.host_state,
    )
    return outcome


async def _undo(bus: EventBus, done: list[Step], outcome: Outcome) -> None:
    for step in reversed(done):
        if step.undo is None:
            continue
        bus.emit("undo_start", name=step.name, host=step.host)
        t0 = time.monotonic()
        try:
            await step.undo()
        except Exception as exc:
            outcome.undo_failed.append(step.name)
            # The error names its own host (a transport or command error): one host key.
            err = {"host": step.host, **describe_error(exc)}
            bus.emit("undo_fail", name=step.name, duration=round(time.monotonic() - t0, 3),
                     **err)
            continue
        outcome.undone.append(step.name)
        bus.emit("undo_ok", name=step.name, host=step.host,
                 duration=round(time.monotonic() - t0, 3))
