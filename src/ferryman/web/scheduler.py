"""The dashboard runs the schedules too: each minute, the same pass as `ferryman schedule
run`, started as a dashboard run (its page, its log, its audit entry) when a job is due."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable

from ..config import Config, ConfigError
from ..errors import FerrymanError, LockHeld
from ..events import EventBus
from ..flows import schedule as flow
from ..hosts import HostPool, open_pool
from .runs import Launcher

USER = "schedule"  # who the runs it starts are by, in history, locks and audit
INTERVAL = 60.0


async def tick(load: Callable[[], Config], launcher: Launcher) -> str | None:
    """Starts a run of what is due now; its id, or None when nothing is (or it is busy)."""
    cfg = load()
    if not cfg.schedules:
        return None
    async with open_pool(cfg) as pool:
        unread: dict[str, str] = {}
        envs = sorted({d.env for d in await flow.due_jobs(cfg, pool, unread=unread) if d.run})
    for env, why in unread.items():
        print(f"ferryman web: schedules: {env}: {why}", file=sys.stderr)
    if not envs:
        return None

    async def job(cfg: Config, pool: HostPool, bus: EventBus) -> int:
        done = await flow.run_pass(cfg, pool, bus, envs=envs)
        return max((j.exit_code for j in done), default=0)

    try:
        return launcher.start("schedule", envs, USER, {"envs": envs}, job)
    except LockHeld:  # a dashboard run holds one of them: the next minute retries
        return None


async def loop(load: Callable[[], Config], launcher: Launcher,
               interval: float = INTERVAL) -> None:
    while True:
        try:
            await tick(load, launcher)
        except (FerrymanError, ConfigError, OSError) as exc:
            # A host down or a config being edited: said, and tried again next minute.
            print(f"ferryman web: schedules: {exc}", file=sys.stderr)
        await asyncio.sleep(interval - time.time() % interval)


def start(load: Callable[[], Config], launcher: Launcher) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(loop(load, launcher))


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
