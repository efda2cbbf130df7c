"""Log files of a run: one JSONL file (every event) and one human-readable file, side by side."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .events import Event

PROGRESS_EVERY = 2.0  # seconds between progress lines in the files


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def run_name(flow: str, suffix: str = "") -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{flow}-{os.getpid()}{suffix}"


class LogFiles:
    def __init__(self, folder: str | Path, flow: str, name: str | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # The name is the run's id on the dashboard: time, flow, and the pid that writes it.
        name = name or run_name(flow)
        self.jsonl_path = self.folder / f"{name}.jsonl"
        self.text_path = self.folder / f"{name}.log"
        self._jsonl: TextIO = self.jsonl_path.open("a", encoding="utf-8")
        self._text: TextIO = self.text_path.open("a", encoding="utf-8")
        self._last_progress: dict[str, float] = {}

    def handle(self, event: Event) -> None:
        if event.kind == "progress" and not self._progress_due(event.data):
            return
        record = {"ts": _stamp(event.ts), "flow": event.flow, "event": event.kind, **event.data}
        self._jsonl.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._jsonl.flush()
        self._text.write(self._line(event) + "\n")
        self._text.flush()

    def _progress_due(self, d: dict[str, Any]) -> bool:
        now = time.monotonic()
        last = self._last_progress.get(d["task"], 0.0)
        if d.get("done") or now - last >= PROGRESS_EVERY:
            self._last_progress[d["task"]] = now
            return True
        return False

    def _line(self, event: Event) -> str:
        d = event.data
        head = f"{_stamp(event.ts)} [{event.flow}]"
        if event.kind in ("step_start", "step_plan"):
            text = f"{head} step {d['n']}/{d['m']} {d['name']}"
            if d.get("params"):
                text += " " + json.dumps(d["params"], ensure_ascii=False, default=str)
            for cmd in d.get("commands") or []:
                text += f"\n    $ {cmd}"
            return text
        if event.kind == "step_ok":
            said = f": {d['result']}" if d.get("result") else ""
            return f"{head} step {d['n']}/{d['m']} {d['name']} ok ({d['duration']}s){said}"
        if event.kind in ("step_fail", "undo_fail"):
            what = f"step {d['n']}/{d['m']}" if "n" in d else "undo"
            text = f"{head} {what} {d['name']} FAILED: {d['error']}"
            if d.get("command"):
                text += f"\n    command on {d.get('host')}: {d['command']} (exit {d.get('exit')})"
            for key in ("stdout", "stderr"):
                if d.get(key):
                    body = "\n".join("      " + ln for ln in d[key].splitlines())
                    text += f"\n    --- {key} ---\n{body}"
            if d.get("hint"):
                text += f"\n    hint: {d['hint']}"
            return text
        if event.kind == "command":
            status = "stream" if d.get("stream") else f"exit {d.get('exit')} {d.get('duration')}s"
            return f"{head}   {d['host']}$ {d['command']} ({status})"
        if event.kind == "progress":
            return f"{head}   {d.get('description', d['task'])}: {d['completed']} bytes"
        if event.kind in ("info", "warn"):
            return f"{head} {event.kind}: {d['message']}"
        rest = json.dumps(d, ensure_ascii=False, default=str)
        return f"{head} {event.kind} {rest}"

    def close(self) -> None:
        self._jsonl.close()
        self._text.close()
