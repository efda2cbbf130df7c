"""Dashboard runs: one per environment at a time, framed by run_start/run_end in their log,
whatever the job does (ends, fails with a ferryman error, crashes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ferryman.config import load_config
from ferryman.errors import LockHeld, PreconditionFailed
from ferryman.web.runs import Launcher, RunStore

CONFIG = """\
version: 1
project: shop
environments:
  test:
    hosts:
      - name: test-1
        address: root@127.0.0.1:9
services:
  web: {}
"""


def _launcher(tmp_path: Path) -> Launcher:
    path = tmp_path / "ferryman.yml"
    path.write_text(CONFIG)
    return Launcher(tmp_path / "logs", lambda: load_config(path))


def test_one_run_per_environment_and_every_end_is_written(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    store = RunStore(tmp_path / "logs")

    async def go() -> None:
        gate = asyncio.Event()

        async def waits(cfg, pool, bus) -> int:  # type: ignore[no-untyped-def]
            bus.info("working")
            await gate.wait()
            return 0

        async def refuses(cfg, pool, bus) -> int:  # type: ignore[no-untyped-def]
            raise PreconditionFailed("container web is missing", hint="start it first")

        async def crashes(cfg, pool, bus) -> int:  # type: ignore[no-untyped-def]
            raise KeyError("surprise")

        first = launcher.start("release", ["test"], "ada", {"to": "test"}, waits)
        with pytest.raises(LockHeld, match=f"test is busy with run {first}"):
            launcher.start("backup", ["test"], "bob", {}, waits)
        gate.set()
        await asyncio.gather(*launcher.tasks)
        assert launcher.busy == {}
        second = launcher.start("backup", ["test"], "bob", {}, refuses)
        await asyncio.gather(*launcher.tasks)
        third = launcher.start("restore", ["test"], "bob", {}, crashes)
        await asyncio.gather(*launcher.tasks)
        ok, refused, crashed = (store.view(r) for r in (first, second, third))
        assert (ok.status, ok.user, ok.exit_code) == ("ok", "ada", 0)
        assert [n["message"] for n in ok.notes if n["kind"] == "info"] == ["working"]
        assert refused.status == "failed" and refused.exit_code == 3
        assert refused.error == "container web is missing (hint: start it first)"
        assert crashed.status == "failed" and crashed.error == "KeyError: 'surprise'"
        # The audit goes to the environment's first host; here nothing answers, and the run
        # says so instead of failing twice.
        assert any("audit entry could not be written on test" in n["message"]
                   for n in ok.notes if n["kind"] == "warn")

    asyncio.run(go())


def test_stopping_the_dashboard_cancels_its_runs_and_ends_their_logs(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)

    async def go() -> str:
        async def forever(cfg, pool, bus) -> int:  # type: ignore[no-untyped-def]
            await asyncio.sleep(3600)
            return 0

        rid = launcher.start("release", ["test"], "ada", {}, forever)
        await asyncio.sleep(0.05)
        await launcher.stop()
        return rid

    rid = asyncio.run(go())
    view = RunStore(tmp_path / "logs").view(rid)
    assert view.status == "failed" and view.error == "stopped with the dashboard"
