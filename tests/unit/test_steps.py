"""The step runner: order, step N/M events, undo in reverse, host state after a failure."""

from __future__ import annotations

import asyncio

from ferryman.events import Collector, EventBus
from ferryman.redact import Redactor
from ferryman.steps import Step, run_steps
from ferryman.transport import CommandFailed, Result, TransportError


def _bus() -> tuple[EventBus, Collector]:
    bus = EventBus("demo", Redactor({"sekret"}))
    col = Collector()
    bus.add(col)
    return bus, col


def test_all_steps_run_in_order() -> None:
    log: list[str] = []

    def step(name: str) -> Step:
        async def run() -> str:
            log.append(name)
            return f"{name} done"
        return Step(name, run, host="h1")

    bus, col = _bus()
    out = asyncio.run(run_steps(bus, [step("a"), step("b")]))
    assert out.ok and log == ["a", "b"]
    assert out.results == {"a": "a done", "b": "b done"}
    starts = [e.data for e in col.events if e.kind == "step_start"]
    assert [(d["n"], d["m"], d["name"]) for d in starts] == [(1, 2, "a"), (2, 2, "b")]
    assert out.host_state == {"h1": "changed"}


def test_failure_undoes_finished_steps_in_reverse() -> None:
    log: list[str] = []

    def step(name: str, fail: bool = False, undo: bool = True, host: str = "h1") -> Step:
        async def run() -> None:
            log.append(f"run {name}")
            if fail:
                raise CommandFailed(Result(host, ["docker", "load"], 1, "out sekret",
                                           "close - IO is still pending on closed socket\nboom"))

        async def back() -> None:
            log.append(f"undo {name}")
        return Step(name, run, back if undo else None, host=host)

    bus, col = _bus()
    steps = [step("a"), step("b", undo=False), step("c", host="h2"), step("d", fail=True)]
    out = asyncio.run(run_steps(bus, steps))
    assert not out.ok
    assert out.failed_step == "step 4/4 d"
    assert log == ["run a", "run b", "run c", "run d", "undo c", "undo a"]
    assert out.undone == ["c", "a"]
    assert out.host_state == {"h1": "restored", "h2": "restored"}
    fail = next(e.data for e in col.events if e.kind == "step_fail")
    assert fail["command"] == "docker load" and fail["exit"] == 1
    assert fail["stderr"] == "boom"  # noise filtered
    assert fail["stdout"] == "out ***"  # secret masked


def test_failed_undo_is_reported_per_host() -> None:
    async def ok() -> None:
        return None

    async def bad() -> None:
        raise RuntimeError("rename failed")

    bus, _ = _bus()
    steps = [Step("rename old", ok, bad, host="prod-1"), Step("start new", bad, host="prod-1")]
    out = asyncio.run(run_steps(bus, steps))
    assert out.undo_failed == ["rename old"]
    assert out.host_state["prod-1"].startswith("NEEDS ATTENTION")


def test_undo_if_failed_cleans_up_own_step() -> None:
    log: list[str] = []

    async def half() -> None:
        log.append("half done")
        raise RuntimeError("midway")

    async def back() -> None:
        log.append("cleaned")

    bus, _ = _bus()
    asyncio.run(run_steps(bus, [Step("x", half, back, undo_if_failed=True)]))
    assert log == ["half done", "cleaned"]


def test_dry_run_runs_nothing() -> None:
    async def boom() -> None:
        raise AssertionError("ran")

    bus, col = _bus()
    out = asyncio.run(run_steps(bus, [Step("x", boom, commands=["docker run app"])],
                                dry_run=True))
    assert out.ok
    plan = next(e.data for e in col.events if e.kind == "step_plan")
    assert plan["commands"] == ["docker run app"]


def test_lost_host_fails_its_undos_too_and_exits_3() -> None:
    """A host lost mid-flow: the undos that need it fail as well; each failure is reported
    (with the host it names) and the flow ends with exit 3."""
    lost = TransportError("prod-1", "connection to root@prod lost while running curl")

    async def ok() -> None:
        return None

    async def gone() -> None:
        raise lost

    steps = [Step("stop old web on prod-1", ok, gone, host="prod-1"),
             Step("health of web on prod-1", gone, host="prod-1")]
    bus, col = _bus()
    out = asyncio.run(run_steps(bus, steps))
    assert not out.ok and out.exit_code == 3
    assert out.failed_step == "step 2/2 health of web on prod-1"
    assert out.undo_failed == ["stop old web on prod-1"]
    (fail,) = [e.data for e in col.events if e.kind == "undo_fail"]
    assert fail["host"] == "prod-1" and "lost while running curl" in fail["error"]
    assert out.host_state == {"prod-1": "NEEDS ATTENTION: undo of 'stop old web on prod-1' failed"}


def test_connection_lost_but_everything_undone_is_a_failed_flow() -> None:
    """The connection broke mid-step but came back for the undos: exit 1, all undone."""
    async def ok() -> None:
        return None

    async def cut() -> None:
        raise TransportError("prod-1", "connection to root@prod lost while running docker load")

    steps = [Step("stop old web on prod-1", ok, ok, host="prod-1"),
             Step("transfer images", cut, host="prod-1")]
    bus, _ = _bus()
    out = asyncio.run(run_steps(bus, steps))
    assert out.undone == ["stop old web on prod-1"] and out.exit_code == 1
