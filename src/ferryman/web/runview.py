"""A run as the dashboard shows it, folded from the lines of its JSONL log.

The same fold serves the first page render and every live update: each line changes a few
named parts of the page (the head, one step, the undo list, the notes), and only those are
sent to the browser again. A CLI run and a dashboard run write the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_COMMANDS = 30  # commands kept per step on the page; the log file has them all


@dataclass
class Transfer:
    task: str
    description: str
    completed: int = 0
    total: int | None = None
    first_ts: float | None = None
    first_completed: int = 0
    last_ts: float | None = None
    done: bool = False

    @property
    def rate(self) -> float | None:
        """Bytes per second since the first report."""
        if self.first_ts is None or self.last_ts is None or self.last_ts <= self.first_ts:
            return None
        return (self.completed - self.first_completed) / (self.last_ts - self.first_ts)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, int(100 * self.completed / self.total))

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if self.done or not self.total or not rate:
            return None
        return max(0.0, (self.total - self.completed) / rate)


@dataclass
class StepView:
    n: int
    m: int
    name: str
    status: str = "planned"  # planned | running | ok | failed | undone | undo-failed
    params: dict[str, Any] = field(default_factory=dict)
    host: str | None = None
    started: float | None = None
    duration: float | None = None
    result: str | None = None
    failure: dict[str, Any] = field(default_factory=dict)  # error, command, exit, stdout...
    commands: list[dict[str, Any]] = field(default_factory=list)
    planned_commands: list[str] = field(default_factory=list)
    transfers: dict[str, Transfer] = field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return f"step-{self.n}"


@dataclass
class RunView:
    id: str
    flow: str = ""
    user: str = ""
    action: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    status: str = "running"  # running | ok | failed | planned | gone
    dry_run: bool = False
    error: str | None = None  # a failure before or outside the steps
    exit_code: int | None = None
    steps: dict[int, StepView] = field(default_factory=dict)
    undos: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # info and warn
    end: dict[str, Any] = field(default_factory=dict)  # the flow_end event
    lines: int = 0  # lines folded: the next line's number is the SSE event id
    wrapped: bool = False  # started by the dashboard: run_start .. run_end frame the run
    _base: int = 0  # step numbers of the flow being folded start after this

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def current(self) -> StepView | None:
        running = [s for s in self.steps.values() if s.status == "running"]
        return running[-1] if running else None

    @property
    def when(self) -> str:
        return (datetime.fromtimestamp(self.started).astimezone().strftime("%Y-%m-%d %H:%M:%S")
                if self.started else "")

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    def apply(self, rec: dict[str, Any]) -> set[str]:
        """Folds one log line in; returns the parts of the page it changed."""
        self.lines += 1
        kind = rec.get("event", "")
        ts = _ts(rec.get("ts"))
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            return set()
        try:
            return handler(rec, ts)
        except (ValueError, TypeError, KeyError, AttributeError):
            return set()  # a line of another shape: the log file still has it

    def _on_run_start(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.wrapped = True
        self.user = rec.get("user", "")
        self.action = rec.get("action", "")
        self.params = rec.get("params") or {}
        self.started = self.started or ts
        self.flow = self.flow or rec.get("flow", "")
        return {"head"}

    def _on_run_end(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.exit_code = rec.get("exit_code")
        if rec.get("error"):
            self.error = rec["error"]
        if self.status == "running" or self.error:
            self.status = "ok" if self.exit_code == 0 and not self.error else "failed"
        if self.dry_run and self.status == "ok":
            self.status = "planned"
        self.ended = ts
        return {"head", "notes"}

    def _on_flow_start(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.flow = rec.get("flow", self.flow)
        self.started = self.started or ts
        self.dry_run = bool(rec.get("dry_run"))
        if not self.params:
            self.params = rec.get("params") or {}
        names = rec.get("steps") or []
        # A resume runs two flows in one run (abort, then the release): number them on.
        self._base = max(self.steps, default=0)
        for i, name in enumerate(names, 1):
            n = self._base + i
            self.steps[n] = StepView(n, self._base + len(names), name)
        return {"head", "steps"}

    def _step(self, rec: dict[str, Any]) -> StepView:
        n = self._base + int(rec.get("n", 0))
        if n not in self.steps:
            self.steps[n] = StepView(n, self._base + int(rec.get("m", 0)), rec.get("name", ""))
        return self.steps[n]

    def _on_step_plan(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self._step(rec)
        s.params = rec.get("params") or {}
        s.host = rec.get("host")
        s.planned_commands = list(rec.get("commands") or [])
        return {s.dom_id}

    def _on_step_start(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self._step(rec)
        s.status = "running"
        s.params = rec.get("params") or {}
        s.host = rec.get("host")
        s.started = ts
        return {s.dom_id, "head"}

    def _on_step_ok(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self._finishing(rec)
        s.status = "ok"
        s.duration = rec.get("duration")
        s.result = rec.get("result")
        for t in s.transfers.values():
            t.done = True
        return {s.dom_id, "head"}

    def _on_step_fail(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self._finishing(rec)
        s.status = "failed"
        s.duration = rec.get("duration")
        s.failure = {k: rec[k] for k in ("error", "command", "short_command", "host", "exit",
                                         "stdout", "stderr", "hint") if rec.get(k) is not None}
        return {s.dom_id, "head"}

    _finishing = _step

    def _on_undo_start(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.undos.append({"name": rec.get("name", ""), "host": rec.get("host"),
                           "status": "running", "duration": None, "error": None})
        return {"undos"}

    def _undo_end(self, rec: dict[str, Any], status: str) -> set[str]:
        name = rec.get("name", "")
        entry = next((u for u in reversed(self.undos) if u["name"] == name
                      and u["status"] == "running"), None)
        if entry is None:
            entry = {"name": name, "host": rec.get("host")}
            self.undos.append(entry)
        entry.update(status=status, duration=rec.get("duration"), error=rec.get("error"))
        changed = {"undos"}
        step = next((s for s in sorted(self.steps.values(), key=lambda x: -x.n)
                     if s.name == name and s.status == "ok"), None)
        if step is not None:
            step.status = "undone" if status == "ok" else "undo-failed"
            changed.add(step.dom_id)
        return changed

    def _on_undo_ok(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        return self._undo_end(rec, "ok")

    def _on_undo_fail(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        return self._undo_end(rec, "failed")

    def _on_flow_end(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.end = rec
        if rec.get("dry_run"):
            self.dry_run = True
        if not self.wrapped:  # a CLI run: its flow_end is its end
            self.status = "planned" if self.dry_run else ("ok" if rec.get("ok") else "failed")
            self.ended = ts
        elif not rec.get("ok"):
            self.status = "failed"
        return {"head", "notes"}

    def _on_command(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self.current
        if s is None:
            return set()
        s.commands.append({k: rec.get(k) for k in ("host", "command", "exit", "duration",
                                                   "stream")})
        del s.commands[:-MAX_COMMANDS]
        return {s.dom_id}

    def _on_progress(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        s = self.current
        if s is None:
            return set()
        task = rec.get("task", "")
        t = s.transfers.get(task)
        if t is None:
            t = s.transfers[task] = Transfer(task, rec.get("description", task))
        t.completed = int(rec.get("completed") or 0)
        t.total = rec.get("total") or t.total
        if t.first_ts is None:
            t.first_ts, t.first_completed = ts, t.completed
        t.last_ts = ts
        t.done = bool(rec.get("done")) or (t.total is not None and t.completed >= t.total)
        return {s.dom_id}

    def _on_info(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.notes.append({"kind": "info", "message": rec.get("message", "")})
        return {"notes"}

    def _on_warn(self, rec: dict[str, Any], ts: float | None) -> set[str]:
        self.notes.append({"kind": "warn", "message": rec.get("message", "")})
        return {"notes"}


def _ts(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def fold(run_id: str, records: list[dict[str, Any]]) -> RunView:
    view = RunView(run_id)
    for rec in records:
        view.apply(rec)
    return view
