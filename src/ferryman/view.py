"""The terminal view of a flow: `step N/M`, timings, transfers with a progress bar, failures."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .events import Event


def _params(params: dict[str, Any]) -> str:
    if not params:
        return ""
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in params.items())


class TerminalView:
    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.verbose = verbose
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def handle(self, event: Event) -> None:
        getattr(self, f"_on_{event.kind}", self._on_other)(event.flow, event.data)

    def _say(self, flow: str, text: str) -> None:
        self.console.print(f"[bold cyan]\\[{escape(flow)}][/] {text}", highlight=False)

    def _on_flow_start(self, flow: str, d: dict[str, Any]) -> None:
        what = "plan" if d.get("dry_run") else "start"
        self._say(flow, f"{what}: {len(d['steps'])} steps {escape(_params(d['params']))}")

    def _on_step_plan(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, f"step {d['n']}/{d['m']} [bold]{escape(d['name'])}[/]")
        if d.get("params"):
            self.console.print(f"    [dim]{escape(_params(d['params']))}[/]", highlight=False)
        for cmd in d.get("commands") or []:
            self.console.print(f"    $ {escape(cmd)}", highlight=False, soft_wrap=True)

    def _on_step_start(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, f"step {d['n']}/{d['m']} [bold]{escape(d['name'])}[/]")
        if d.get("params"):
            self.console.print(f"    [dim]{escape(_params(d['params']))}[/]", highlight=False)

    def _on_step_ok(self, flow: str, d: dict[str, Any]) -> None:
        self._stop_progress()
        said = f": {escape(d['result'])}" if d.get("result") else ""
        self.console.print(f"    [green]ok[/] ({d['duration']:.1f}s){said}", highlight=False)

    def _on_step_fail(self, flow: str, d: dict[str, Any]) -> None:
        self._stop_progress()
        self._say(flow, f"[bold red]FAILED[/] step {d['n']}/{d['m']} {escape(d['name'])}: "
                  f"{escape(d['error'])}")
        self._failure_detail(d)

    def _failure_detail(self, d: dict[str, Any]) -> None:
        if d.get("command"):
            # The full line (inline scripts included) is in the log files.
            shown = d.get("short_command") or d["command"]
            self.console.print(f"    command on {escape(d.get('host', '?'))}: "
                               f"{escape(shown)} (exit {d.get('exit')})", highlight=False)
        for key in ("stdout", "stderr"):
            if d.get(key):
                self.console.print(f"    --- {key} ---", style="dim")
                self.console.print(escape(d[key]), highlight=False, markup=True)
        if d.get("hint"):
            self.console.print(f"    hint: {escape(d['hint'])}", style="yellow", highlight=False)

    def _on_undo_start(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, f"undo {escape(d['name'])}")

    def _on_undo_ok(self, flow: str, d: dict[str, Any]) -> None:
        self.console.print(f"    [green]undone[/] ({d['duration']:.1f}s)", highlight=False)

    def _on_undo_fail(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, f"[bold red]undo FAILED[/] {escape(d['name'])}: {escape(d['error'])}")
        self._failure_detail(d)

    def _on_flow_end(self, flow: str, d: dict[str, Any]) -> None:
        self._stop_progress()
        if d.get("dry_run"):
            self._say(flow, "dry run: nothing was changed")
        elif d["ok"]:
            self._say(flow, f"[bold green]done[/] in {d['duration']:.1f}s")
        else:
            self._say(flow, f"[bold red]failed[/] at {escape(d.get('failed_step') or '?')}")
            for host, state in (d.get("host_state") or {}).items():
                self.console.print(f"    {escape(host)}: {escape(state)}", highlight=False)

    def _on_command(self, flow: str, d: dict[str, Any]) -> None:
        if self.verbose:
            status = "" if d.get("stream") else f" -> {d.get('exit')} ({d.get('duration', 0):.2f}s)"
            self.console.print(f"    [dim]{escape(d['host'])}$ {escape(d['command'])}{status}[/]",
                               highlight=False)

    def _on_progress(self, flow: str, d: dict[str, Any]) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("    {task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
            )
            self._progress.start()
        key = d["task"]
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(d.get("description", key),
                                                       total=d.get("total"))
        self._progress.update(self._tasks[key], completed=d["completed"], total=d.get("total"))

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def _on_info(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, escape(d["message"]))

    def _on_warn(self, flow: str, d: dict[str, Any]) -> None:
        self._say(flow, f"[yellow]warning:[/] {escape(d['message'])}")

    def _on_other(self, flow: str, d: dict[str, Any]) -> None:
        return None
