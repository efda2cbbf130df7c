"""How a Swarm update's outcome is read (UpdateStatus, never the exit code) and undone, over a
manager that answers with `docker service inspect` captured from a real Swarm."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ferryman.swarm import facts as sf
from ferryman.swarm import release as sr
from ferryman.transport import CommandFailed, Result
from ferryman.undo import run_undo

DATA = Path(__file__).parent / "data" / "swarm"


class Manager:
    """Answers each `docker service inspect` with the next captured state (the last one
    again once they run out); records every argv."""

    label = "manager"

    def __init__(self, *states: str) -> None:
        self.states = [(DATA / f"{s}.json").read_text() for s in states]
        self.ran: list[list[str]] = []

    async def run(self, argv: list[str], timeout: float | None = None,
                  check: bool = False) -> Result:
        self.ran.append(list(argv))
        if argv[:3] == ["docker", "service", "inspect"]:
            out = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return Result("manager", argv, 0, out)
        if argv[:3] == ["docker", "service", "ps"]:
            return Result("manager", argv, 0, (DATA / "tasks_rolled_back.jsonl").read_text())
        if argv[:3] == ["docker", "service", "rollback"]:
            return Result("manager", argv, 0, "shop_web\n")
        raise AssertionError(f"unexpected command {argv}")


class Ctx:
    def __init__(self, mgr: Manager) -> None:
        self.mgr = mgr

    def host(self, label: str) -> Any:
        assert label == "manager"
        return self.mgr


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sr, "POLL", 0)

    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(sr.asyncio, "sleep", instant)


def started(name: str) -> str | None:
    return sf.parse_services((DATA / f"{name}.json").read_text())["shop_web"].update_started


def test_waits_past_the_previous_update_to_the_new_ones_end() -> None:
    # The first read still shows the earlier update (completed): not this one's outcome.
    mgr = Manager("service_completed", "service_completed", "service_rolled_back")
    done = asyncio.run(sr.wait_update(mgr, "shop_web", started("service_completed"), 60))
    assert done.update_state == "rollback_completed"
    assert len(mgr.ran) == 3


def test_a_service_never_updated_ends_at_its_first_final_state() -> None:
    mgr = Manager("service_before", "service_completed")
    done = asyncio.run(sr.wait_update(mgr, "shop_web", None, 60))
    assert done.update_state == "completed"


def test_an_update_that_never_ends_fails_after_the_timeout() -> None:
    mgr = Manager("service_completed")
    with pytest.raises(Exception, match="still completed after 0s"):
        asyncio.run(sr.wait_update(mgr, "shop_web", started("service_completed"), 0))


def test_undo_leaves_a_service_swarm_already_rolled_back() -> None:
    mgr = Manager("service_rolled_back")
    asyncio.run(run_undo(Ctx(mgr), {"kind": "swarm-update", "host": "manager",  # type: ignore[arg-type]
                                    "service": "shop_web", "ref": "ferryman-app:r-bad"}))
    assert [a[:3] for a in mgr.ran] == [["docker", "service", "inspect"]]


def test_undo_rolls_back_a_service_that_still_names_the_release() -> None:
    ref = sf.parse_services((DATA / "service_completed.json").read_text())["shop_web"].image
    mgr = Manager("service_completed", "service_completed", "service_rolled_back")
    asyncio.run(run_undo(Ctx(mgr), {"kind": "swarm-update", "host": "manager",  # type: ignore[arg-type]
                                    "service": "shop_web", "ref": ref}))
    assert ["docker", "service", "rollback", "--detach", "shop_web"] in mgr.ran


class Racing:
    """Refuses the first `n` updates as Swarm does when another change raced them."""

    label = "manager"

    def __init__(self, n: int, stderr: str = "Error response from daemon: rpc error: code = "
                 "Unknown desc = update out of sequence") -> None:
        self.n, self.stderr, self.ran = n, stderr, 0

    async def run(self, argv: list[str], timeout: float | None = None) -> Result:
        self.ran += 1
        if self.ran <= self.n:
            return Result("manager", argv, 1, "", self.stderr)
        return Result("manager", argv, 0, "shop_web\n")


def test_an_update_that_raced_another_change_is_asked_again() -> None:
    mgr = Racing(2)
    asyncio.run(sr.update(mgr, ["docker", "service", "update"]))  # type: ignore[arg-type]
    assert mgr.ran == 3


def test_other_refusals_and_endless_races_fail_the_step() -> None:
    with pytest.raises(CommandFailed):
        asyncio.run(sr.update(Racing(1, "no such service"), ["docker"]))  # type: ignore[arg-type]
    racing = Racing(5)
    with pytest.raises(CommandFailed):
        asyncio.run(sr.update(racing, ["docker"]))  # type: ignore[arg-type]
    assert racing.ran == 3


def test_completed_is_believed_only_when_no_task_of_another_image_runs() -> None:
    done = sf.parse_services((DATA / "service_completed.json").read_text())["shop_web"]
    said = asyncio.run(sr.landed(Manager("service_completed"), done, done.image))  # type: ignore[arg-type]
    assert said == f"shop_web runs {done.image} (update completed)"
    with pytest.raises(Exception, match="tasks of another image still run"):
        asyncio.run(sr.landed(Manager("service_completed"), done, "app:other"))  # type: ignore[arg-type]
    done.replicas = 1
    said = asyncio.run(sr.landed(Manager("service_completed"), done, done.image))  # type: ignore[arg-type]
    assert said.endswith("2 tasks run for 1 replica(s) (on manager, worker2)")
