"""The step runner: a flow is an ordered list of named steps, each with its undo.

The runner takes the lock of every environment the flow changes (no flow can forget it),
refuses to start over an unfinished flow's journal, announces `step N/M`, records parameters
and timings, writes the journal before each change, and on failure records the raw output,
runs the undos of the finished steps in reverse, and says what each host is left in.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import FerrymanError, Interrupted, exit_code_of
from .events import EventBus
from .redact import raw_output
from .transport.base import CommandFailed, TransportError, short_command

if TYPE_CHECKING:
    from .journal import Journal
    from .locking import EnvLock

Action = Callable[[], Awaitable[Any]]
# The journal and the step running now: a step that learns what its undo needs as it goes
# (which containers it is about to stop) saves it with note_undo() before it changes anything.
_running: contextvars.ContextVar[tuple[Journal, int, Step] | None] = contextvars.ContextVar(
    "ferryman_running_step", default=None)


async def note_undo() -> None:
    """Saves the running step's undo_data (as it stands now) in the journal."""
    running = _running.get()
    if running is not None:
        journal, n, step = running
        await journal.noted(n, step)
Finish = Callable[["Outcome"], Awaitable[Any]]


@dataclass
class Step:
    name: str
    run: Action
    undo: Action | None = None
    params: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # the host this step changes, for the state report
    commands: list[str] = field(default_factory=list)  # planned command lines, for --dry-run
    undo_if_failed: bool = False  # the undo also cleans up after this step's own failure
    # What the undo needs, as data: the journal keeps it so `ferryman abort` can undo this
    # step from another process (see undo.py). None: nothing to undo, or not from outside.
    undo_data: dict[str, Any] | None = None

    @property
    def changes(self) -> bool:
        return self.host is not None or self.undo is not None


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
        """The error's own code (errors.py), wherever the flow stopped; 1 when an undo
        failed, since a host then needs attention whatever the first cause, unless a host
        was lost: that is 3 (its undos fail for the same reason)."""
        if self.ok:
            return 0
        if isinstance(self.exception, TransportError):
            return exit_code_of(self.exception)
        return 1 if self.undo_failed else exit_code_of(self.exception)

    @property
    def clean(self) -> bool:
        """Every host is as planned: the flow succeeded, or all its undos ran."""
        return self.ok or not self.undo_failed


def describe_error(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"error": str(exc) or type(exc).__name__,
                            "exit_code": exit_code_of(exc)}
    if isinstance(exc, CommandFailed):
        r = exc.result
        data.update(command=r.command_line, short_command=r.short_command,
                    exit=r.exit_status, stdout=r.stdout, stderr=r.stderr)
    if isinstance(exc, FerrymanError):
        if exc.host:
            data["host"] = exc.host
        if exc.evidence and "stdout" not in data:
            data["stdout"] = exc.evidence
        if exc.hint:
            data["hint"] = exc.hint
    return data


def lock_steps(locks: Sequence[EnvLock], journal: Journal | None,
               after_lock: Action | None) -> list[Step]:
    """One step per environment lock; the last also refuses an unfinished flow's journal and
    re-reads what planning saw (`after_lock`), now that nobody else can change it."""
    steps = []
    for i, lk in enumerate(locks):
        last = i == len(locks) - 1

        async def run(lk: EnvLock = lk, last: bool = last) -> str:
            if not lk.held:
                await lk.take()
            if last and journal is not None:
                await journal.refuse_unfinished(locks)
            if last and after_lock is not None:
                await after_lock()
            said = f"locked by {lk.owner.owner}"
            return said + (f" (took over a stale lock of {lk.took_over})" if lk.took_over
                           else "")

        steps.append(Step(f"lock {lk.env} on {lk.label}", run,
                          params={"owner": lk.owner.owner, "command": lk.owner.command},
                          commands=[f"{lk.label}: {short_command(lk.acquire_argv)}"]))
    return steps


async def run_steps(
    bus: EventBus, steps: list[Step], params: dict[str, Any] | None = None, *,
    locks: Sequence[EnvLock], journal: Journal | None = None, dry_run: bool = False,
    after_lock: Action | None = None, finish: Finish | None = None,
) -> Outcome:
    """Runs a flow under the locks of the environments it changes.

    `locks` is required: a flow whose steps change a host and that holds no lock is a bug,
    refused here. `finish` runs under the locks after the steps (and undos): to record the
    run. The journal is kept on the lock hosts until every host is as planned.
    """
    if not locks and any(s.changes for s in steps):
        raise TypeError("a flow that changes hosts must run under its environments' locks")
    taking = lock_steps(locks, journal, after_lock)
    steps = taking + steps
    try:
        outcome = await _run(bus, steps, params, journal, dry_run)
        # A run refused at its locks (held, unfinished journal, changed since planning) did
        # nothing: there is nothing to record.
        if (finish is not None and not dry_run
                and all(s.name in outcome.results for s in taking)):
            try:
                await finish(outcome)
            except Exception as exc:  # the hosts are as the outcome says, recorded or not
                bus.warn(f"after the {bus.flow}: {exc}")
        if journal is not None and journal.written and outcome.clean:
            await _after(bus, "remove the journal", journal.remove())
        return outcome
    finally:
        for lk in reversed(locks):
            if not await lk.give_back():
                bus.warn(f"the lock of {lk.env} on {lk.label} could not be given back: once "
                         f"{lk.label} answers, the next run finds it stale (or: ferryman "
                         f"unlock {lk.env})")


async def _after(bus: EventBus, what: str, action: Awaitable[Any]) -> None:
    """Book-keeping after the steps must not hide their outcome: when the host that keeps it
    is the one lost, say so and let the outcome stand."""
    try:
        await action
    except Exception as exc:
        bus.warn(f"could not {what}: {exc}")


async def _run(bus: EventBus, steps: list[Step], params: dict[str, Any] | None,
               journal: Journal | None, dry_run: bool) -> Outcome:
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
        t0 = time.monotonic()
        try:
            # The journal knows of a step before anyone is told it started.
            if journal is not None and step.changes:
                await journal.started(n, total, step)
            bus.emit("step_start", n=n, m=total, name=step.name, params=step.params,
                     host=step.host)
            token = _running.set((journal, n, step) if journal is not None else None)
            try:
                outcome.results[step.name] = await step.run()
            finally:
                _running.reset(token)
            if journal is not None and step.changes:
                await journal.finished(n, step)
        except (Exception, asyncio.CancelledError) as caught:
            # Ctrl-C cancels the run: undo what was done, as for any failure.
            exc: BaseException = (Interrupted("interrupted by the operator")
                                  if isinstance(caught, asyncio.CancelledError) else caught)
            if isinstance(exc, FerrymanError) and exc.step is None:
                exc.step = f"step {n}/{total} {step.name}"
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
            if journal is not None and journal.written and outcome.undo_failed:
                await _after(bus, "mark the journal", journal.mark("undo failed",
                                                                   outcome.undo_failed))
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
    # Every change left in place on a host, and whether that host was the one lost: the
    # operator has to mend each of them by hand.
    left: dict[str, list[str]] = {}
    for failed in outcome.undo_failed:
        host = next((s.host for s in done if s.name == failed), None)
        if host:
            left.setdefault(host, []).append(failed)
    exc = outcome.exception
    lost = exc.host if isinstance(exc, TransportError) else None
    for host, names in left.items():
        why = " (unreachable)" if host == lost else ""
        outcome.host_state[host] = f"NEEDS ATTENTION{why}: not undone: {'; '.join(names)}"
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
            # The error names its host too (TransportError, CommandFailed): one key each.
            bus.emit("undo_fail", **{**describe_error(exc), "name": step.name,
                                     "host": step.host,
                                     "duration": round(time.monotonic() - t0, 3)})
            continue
        outcome.undone.append(step.name)
        bus.emit("undo_ok", name=step.name, host=step.host,
                 duration=round(time.monotonic() - t0, 3))
