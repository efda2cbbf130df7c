"""Runs: every flow's JSONL log in the config's log folder, whoever started it (the CLI or
the dashboard), and the flows the dashboard starts itself.

A run's id is its log file's name. The dashboard follows a run by reading its file, so a CLI
release shows up live too; a page that reloads or a second browser replays from the file (the
line number is the server-sent event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import BadInput, FerrymanError, LockHeld
from ..events import EventBus
from ..hosts import HostPool, open_pool
from ..locking import pid_alive
from ..logfiles import LogFiles, run_name
from ..redact import Redactor
from ..state import acting_user
from . import audit
from .runview import RunView, fold

RUN_ID = re.compile(r"^\d{8}-\d{6}-[a-z][a-z-]*-\d+(-[0-9a-f]{6})?$")
POLL = 0.25  # seconds between two looks at a followed log file
KEEPALIVE = 15.0
QUIET = 5.0  # seconds without a new line after which an ended CLI run is left

# What a dashboard action runs: the flow against a fresh pool, its exit code back.
Job = Callable[[Config, HostPool, EventBus], Awaitable[int]]


def _pid_of(run_id: str) -> int:
    m = re.search(r"-(\d+)(?:-[0-9a-f]{6})?$", run_id)
    return int(m.group(1)) if m else 0


def _alive(pid: int, run_id: str = "", active: Callable[[], set[str]] | None = None) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        # This process's own runs are the ones its launcher holds; a run of an earlier
        # process that had the same pid (a restart in a container) is not alive.
        return active is None or run_id in active()
    return pid_alive(pid)


def parse_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line being written: the next read has it whole
            break
        if isinstance(rec, dict):
            out.append(rec)
    return out


@dataclass
class Summary:
    id: str
    flow: str
    when: str
    user: str
    status: str
    params: dict[str, Any]
    failed_step: str | None = None
    error: str | None = None


class RunStore:
    """The runs in one log folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.active: Callable[[], set[str]] | None = None  # the runs this process runs

    def path(self, run_id: str) -> Path:
        if not RUN_ID.fullmatch(run_id):
            raise BadInput(f"'{run_id}' is not a run id")
        path = self.folder / f"{run_id}.jsonl"
        if not path.is_file():
            raise BadInput(f"no run {run_id} in {self.folder}")
        return path

    def records(self, run_id: str) -> list[dict[str, Any]]:
        return parse_lines(self.path(run_id).read_text(encoding="utf-8", errors="replace"))

    def alive(self, run_id: str) -> bool:
        return _alive(_pid_of(run_id), run_id, self.active)

    def view(self, run_id: str) -> RunView:
        # Asked before the file is read: a writer gone by then had written its last line.
        alive = self.alive(run_id)
        return settle(fold(run_id, self.records(run_id)), alive)

    def ids(self, limit: int = 50) -> list[str]:
        if not self.folder.is_dir():
            return []
        names = sorted((p.stem for p in self.folder.glob("*.jsonl") if RUN_ID.fullmatch(p.stem)),
                       reverse=True)
        return names[:limit]

    def summaries(self, limit: int = 50) -> list[Summary]:
        out = []
        for rid in self.ids(limit):
            try:
                v = self.view(rid)
            except (BadInput, OSError):
                continue
            out.append(Summary(rid, v.flow or rid.split("-")[2], v.when, v.user, v.status,
                               v.params, v.end.get("failed_step"),
                               v.error or v.end.get("error")))
        return out

    async def follow(self, run_id: str, start: int) -> AsyncIterator[tuple[int, RunView,
                                                                           set[str]]]:
        """Yields (line number, the run so far, parts changed) for every line from `start`
        on, as the file grows, until the run ends (or its writer is gone)."""
        path = self.path(run_id)
        view = RunView(run_id)
        offset = 0
        pending = b""
        n = 0
        grown = time.monotonic()
        while True:
            alive = self.alive(run_id)  # before the read (see view)
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    rec = {}
                changed = view.apply(rec) if isinstance(rec, dict) else set()
                n += 1
                if n > start:
                    yield n, view, changed
            if chunk:
                grown = time.monotonic()
            # A dashboard run ends at run_end; a CLI run's process may still say a word after
            # its flow_end (the record): follow it until it exits or goes quiet.
            quiet = time.monotonic() - grown > QUIET
            if (view.finished and (view.wrapped or quiet)) or not alive:
                settle(view, alive)
                yield n, view, {"end"}
                return
            await asyncio.sleep(POLL)


def settle(view: RunView, alive: bool) -> RunView:
    """A run whose writer is gone without a last word ended there (killed, lost power)."""
    if not view.finished and not alive:
        view.status = "gone"
    return view


class Launcher:
    """Starts dashboard runs: one per environment at a time in this process; across
    processes the environment lock on the server decides, as for the CLI."""

    def __init__(self, folder: Path, load: Callable[[], Config]) -> None:
        self.folder = folder
        self.load = load
        self.busy: dict[str, str] = {}  # env -> run id
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, flow: str, envs: list[str], user: str, params: dict[str, Any],
              job: Job) -> str:
        taken = [e for e in envs if e in self.busy]
        if taken:
            raise LockHeld(f"{', '.join(taken)} is busy with run {self.busy[taken[0]]}",
                           hint="wait for it to end, or watch it on its run page")
        cfg = self.load()
        run_id = run_name(flow, f"-{secrets.token_hex(3)}")
        logs = LogFiles(self.folder, flow, run_id)
        bus = EventBus(flow, Redactor(cfg.secrets))
        bus.add(logs)
        bus.emit("run_start", user=user, action=flow, params=params)
        for env in envs:
            self.busy[env] = run_id
        task = asyncio.get_running_loop().create_task(
            self._run(cfg, bus, logs, envs, user, job, run_id, params))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return run_id

    async def _run(self, cfg: Config, bus: EventBus, logs: LogFiles, envs: list[str],
                   user: str, job: Job, run_id: str, params: dict[str, Any]) -> None:
        acting_user.set(user)
        code = 1
        error: str | None = None
        try:
            async with open_pool(cfg, bus) as pool:
                try:
                    code = await job(cfg, pool, bus)
                except FerrymanError as exc:
                    code, error = exc.exit_code, str(exc)
                    if exc.hint:
                        error += f" (hint: {exc.hint})"
                except Exception as exc:  # the page must say it; the server must go on
                    code, error = 1, f"{type(exc).__name__}: {exc}"
                for env in envs:
                    try:
                        await audit.record(cfg, pool, env, audit.entry(
                            user, bus.flow, params, code, run_id, error))
                    except Exception as exc:
                        bus.warn(f"the audit entry could not be written on {env}: {exc}")
        except asyncio.CancelledError:
            code, error = 1, "stopped with the dashboard"
            raise
        except Exception as exc:  # opening or closing the pool
            code, error = 1, f"{type(exc).__name__}: {exc}"
        finally:
            bus.emit("run_end", exit_code=code, **({"error": error} if error else {}))
            logs.close()
            for env in envs:
                self.busy.pop(env, None)

    async def stop(self) -> None:
        """Cancels the runs in progress (their undos run) and waits for them."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
