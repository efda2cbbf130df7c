"""The step runner: order, step N/M events, undo in reverse, host state after a failure."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ferryman.errors import EXIT_FLOW_FAILED, EXIT_PRECONDITION, PreconditionFailed
from ferryman.events import Collector, EventBus
from ferryman.journal import Journal, journal_path
from ferryman.locking import EnvLock, LockOwner
from ferryman.redact import Redactor
from ferryman.steps import Step, run_steps
from ferryman.transport import CommandFailed, LocalHost, Result, TransportError


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hosts' state folder (/var/lib/ferryman), here on the local machine."""
    monkeypatch.setattr("ferryman.state.ROOT", str(tmp_path))
    return tmp_path


def _lock(env: str = "prod") -> EnvLock:
    return EnvLock(env, "local", LocalHost(), "shop", LockOwner.mine(f"test {env}"))


def _bus() -> tuple[EventBus, Collector]:
    bus = EventBus("demo", Redactor({"sekret"}))
    col = Collector()
    bus.add(col)
    return bus, col


def test_all_steps_run_in_order(root: Path) -> None:
    log: list[str] = []

    def step(name: str) -> Step:
        async def run() -> str:
            log.append(name)
            return f"{name} done"
        return Step(name, run, host="h1")

    bus, col = _bus()
    out = asyncio.run(run_steps(bus, [step("a"), step("b")], locks=[_lock()]))
    assert out.ok and log == ["a", "b"]
    assert out.results["a"] == "a done" and out.results["b"] == "b done"
    starts = [e.data for e in col.events if e.kind == "step_start"]
    assert [(d["n"], d["m"], d["name"]) for d in starts] == [
        (1, 3, "lock prod on local"), (2, 3, "a"), (3, 3, "b")]
    assert out.host_state == {"h1": "changed"}
    assert not (root / "shop/lock").exists()  # given back


def test_failure_undoes_finished_steps_in_reverse(root: Path) -> None:
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
    out = asyncio.run(run_steps(bus, steps, locks=[_lock()]))
    assert not out.ok
    assert out.failed_step == "step 5/5 d"
    assert out.exit_code == EXIT_FLOW_FAILED
    assert log == ["run a", "run b", "run c", "run d", "undo c", "undo a"]
    assert out.undone == ["c", "a"]
    assert out.host_state == {"h1": "restored", "h2": "restored"}
    fail = next(e.data for e in col.events if e.kind == "step_fail")
    assert fail["command"] == "docker load" and fail["exit"] == 1
    assert fail["stderr"] == "boom"  # noise filtered
    assert fail["stdout"] == "out ***"  # secret masked


def test_failed_undo_is_reported_per_host(root: Path) -> None:
    async def ok() -> None:
        return None

    async def bad() -> None:
        raise RuntimeError("rename failed")

    bus, _ = _bus()
    steps = [Step("rename old", ok, bad, host="prod-1"), Step("start new", bad, host="prod-1")]
    out = asyncio.run(run_steps(bus, steps, locks=[_lock()]))
    assert out.undo_failed == ["rename old"]
    assert out.host_state["prod-1"].startswith("NEEDS ATTENTION")


def test_undo_failing_on_a_lost_host_does_not_stop_the_other_undos(root: Path) -> None:
    """Errors that name their host (a lost connection, a failed command) are reported like
    any other; the undos of the other hosts still run."""
    log: list[str] = []

    async def ok() -> None:
        return None

    async def back_prod1() -> None:
        log.append("undo prod-1")

    async def lost() -> None:
        raise TransportError("prod-2", "cannot connect to root@127.0.0.1:22: Connection reset")

    async def refused() -> None:
        raise CommandFailed(Result("prod-2", ["docker", "rm", "-f", "x"], 1, "", "no"))

    async def bad() -> None:
        raise TransportError("prod-2", "connection lost while running docker")

    bus, col = _bus()
    steps = [Step("new web on prod-1", ok, back_prod1, host="prod-1"),
             Step("new web on prod-2", ok, lost, host="prod-2"),
             Step("new api on prod-2", ok, refused, host="prod-2"),
             Step("health on prod-2", bad, host="prod-2")]
    out = asyncio.run(run_steps(bus, steps, locks=[_lock()]))
    assert log == ["undo prod-1"]
    assert out.undone == ["new web on prod-1"]
    assert out.undo_failed == ["new api on prod-2", "new web on prod-2"]
    assert out.host_state["prod-1"] == "restored"
    assert out.host_state["prod-2"] == ("NEEDS ATTENTION (unreachable): not undone: "
                                        "new api on prod-2; new web on prod-2")
    fails = [e.data for e in col.events if e.kind == "undo_fail"]
    assert [(d["name"], d["host"]) for d in fails] == [("new api on prod-2", "prod-2"),
                                                       ("new web on prod-2", "prod-2")]
    assert "Connection reset" in fails[1]["error"]


def test_undo_if_failed_cleans_up_own_step(root: Path) -> None:
    log: list[str] = []

    async def half() -> None:
        log.append("half done")
        raise RuntimeError("midway")

    async def back() -> None:
        log.append("cleaned")

    bus, _ = _bus()
    asyncio.run(run_steps(bus, [Step("x", half, back, undo_if_failed=True)], locks=[_lock()]))
    assert log == ["half done", "cleaned"]


def test_dry_run_runs_nothing(root: Path) -> None:
    async def boom() -> None:
        raise AssertionError("ran")

    bus, col = _bus()
    out = asyncio.run(run_steps(bus, [Step("x", boom, commands=["docker run app"])],
                                locks=[_lock()], dry_run=True))
    assert out.ok
    plan = [e.data for e in col.events if e.kind == "step_plan"]
    assert plan[-1]["commands"] == ["docker run app"]
    assert not (root / "shop/lock").exists()  # a dry run takes no lock


def test_a_flow_that_changes_hosts_cannot_run_without_a_lock() -> None:
    async def noop() -> None:
        return None

    bus, _ = _bus()
    with pytest.raises(TypeError, match="locks"):
        asyncio.run(run_steps(bus, [Step("x", noop, host="h1")], locks=[]))


def test_same_error_same_exit_code_before_and_after_changes(root: Path) -> None:
    """An unreachable host is 3 whether it is lost at the first step or after undos ran."""
    async def ok() -> None:
        return None

    async def lost() -> None:
        raise TransportError("prod-2", "connection lost")

    async def back() -> None:
        return None

    bus, _ = _bus()
    first = asyncio.run(run_steps(bus, [Step("a", lost, host="h1")], locks=[_lock()]))
    later = asyncio.run(run_steps(bus, [Step("a", ok, back, host="h1"),
                                        Step("b", lost, host="h1")], locks=[_lock()]))
    assert first.exit_code == later.exit_code == EXIT_PRECONDITION
    assert later.undone == ["a"]
    assert later.exception.step == "step 3/3 b"


def test_journal_is_written_before_each_change_and_removed_after(root: Path) -> None:
    path = Path(root / "shop/journal.json")
    seen: list[dict] = []

    def step(name: str) -> Step:
        async def run() -> None:
            seen.append(json.loads(path.read_text()))
        return Step(name, run, host="h1", undo_data={"kind": "noop", "name": name})

    lock = _lock()
    journal = Journal("release", "r1", "prod", "shop", "ana", "release test prod",
                      context={"from": "test"}, hosts=[("local", lock.host)])
    bus, _ = _bus()
    out = asyncio.run(run_steps(bus, [step("a"), step("b")], locks=[lock], journal=journal))
    assert out.ok
    assert [(e["steps"][-1]["name"], e["steps"][-1]["status"]) for e in seen] == [
        ("a", "started"), ("b", "started")]
    assert seen[1]["steps"][0]["status"] == "done"
    assert seen[1]["steps"][0]["undo"] == {"kind": "noop", "name": "a"}
    assert seen[0]["context"] == {"from": "test"} and seen[0]["version"] == 1
    assert not path.exists()


def test_a_journal_left_behind_refuses_the_next_run_and_names_it(root: Path) -> None:
    path = Path(journal_path("shop"))
    path.parent.mkdir(parents=True)
    left = Journal("release", "r7", "prod", "shop", "ana@laptop", "release test prod (r7)",
                   total=8)
    left.entries = []
    data = left.to_dict()
    data["steps"] = [{"n": 3, "name": "stop old web on prod-1", "host": "prod-1",
                      "status": "started", "undo": None}]
    path.write_text(json.dumps(data))
    ran: list[str] = []

    async def run() -> None:
        ran.append("x")

    lock = _lock()
    journal = Journal("release", "r8", "prod", "shop", "bob", "release", hosts=[("l", lock.host)])
    bus, _ = _bus()
    out = asyncio.run(run_steps(bus, [Step("x", run, host="h1")], locks=[lock], journal=journal))
    assert not out.ok and ran == [] and out.exit_code == EXIT_PRECONDITION
    assert isinstance(out.exception, PreconditionFailed)
    assert "unfinished release r7" in out.error and "step 3/8 stop old web on prod-1" in out.error
    assert "ferryman resume prod" in out.exception.hint
    assert path.exists() and not (root / "shop/lock").exists()


def test_journal_stays_when_an_undo_fails(root: Path) -> None:
    async def ok() -> None:
        return None

    async def bad() -> None:
        raise RuntimeError("no")

    lock = _lock()
    journal = Journal("release", "r1", "prod", "shop", "ana", "x", hosts=[("l", lock.host)])
    bus, _ = _bus()
    out = asyncio.run(run_steps(bus, [Step("a", ok, bad, host="h1"), Step("b", bad, host="h1")],
                                locks=[lock], journal=journal))
    assert out.undo_failed == ["a"] and out.exit_code == EXIT_FLOW_FAILED
    left = json.loads(Path(journal_path("shop")).read_text())
    assert left["state"] == "undo failed" and left["context"]["undo_failed"] == ["a"]


def test_lost_host_fails_its_undos_too_and_still_exits_3(root: Path) -> None:
    """A host lost mid-flow: the undos that need it fail as well; each failure is reported
    (with the host it names), and the flow ends with exit 3, not the 1 of a failed undo."""
    async def ok() -> None:
        return None

    async def gone() -> None:
        raise TransportError("prod-1", "connection to root@prod lost while running curl")

    steps = [Step("stop old web on prod-1", ok, gone, host="prod-1"),
             Step("health of web on prod-1", gone, host="prod-1")]
    bus, col = _bus()
    out = asyncio.run(run_steps(bus, steps, locks=[_lock()]))
    assert not out.ok and out.exit_code == EXIT_PRECONDITION
    assert out.failed_step is not None and out.failed_step.endswith("health of web on prod-1")
    assert out.undo_failed == ["stop old web on prod-1"]
    (fail,) = [e.data for e in col.events if e.kind == "undo_fail"]
    assert fail["host"] == "prod-1" and "lost while running curl" in fail["error"]


class Cuttable(LocalHost):
    """A local host whose connection can be cut: every command then fails as over SSH."""

    def __init__(self) -> None:
        super().__init__("prod-1")
        self.cut = False

    async def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
        if self.cut:
            raise TransportError(self.label, "cannot connect to root@prod-1: Connection reset")
        return await super().run(argv, **kw)


def test_losing_the_first_host_leaves_the_outcome_standing(root: Path) -> None:
    """The host of the lock, journal and record is the one lost: the undos of the other hosts
    run, the outcome is returned, and what could not be kept there is said."""
    first = Cuttable()
    lock = EnvLock("prod", "prod-1", first, "shop", LockOwner.mine("release test prod"))
    journal = Journal("release", "r1", "prod", "shop", "ana", "x", hosts=[("prod-1", first)])
    log: list[str] = []

    async def ok() -> None:
        return None

    async def undo_prod2() -> None:
        log.append("undo prod-2")

    async def undo_prod1() -> None:
        await first.run(["true"])

    async def lost() -> None:
        first.cut = True
        await first.run(["true"])

    async def record(outcome: object) -> None:
        await first.run(["true"])

    bus, col = _bus()
    steps = [Step("new web on prod-2", ok, undo_prod2, host="prod-2"),
             Step("new web on prod-1", ok, undo_prod1, host="prod-1"),
             Step("health of web on prod-1", lost, host="prod-1")]
    out = asyncio.run(run_steps(bus, steps, locks=[lock], journal=journal, finish=record))
    assert log == ["undo prod-2"] and out.undo_failed == ["new web on prod-1"]
    assert out.host_state["prod-2"] == "restored"
    assert out.host_state["prod-1"].startswith("NEEDS ATTENTION (unreachable)")
    assert out.exit_code == EXIT_PRECONDITION  # a lost host is 3, even with undos left
    warned = [e.data["message"] for e in col.events if e.kind == "warn"]
    assert [w.split(":")[0] for w in warned] == [
        "could not mark the journal", "after the demo",
        "the lock of prod on prod-1 could not be given back"]
    assert "ferryman unlock prod" in warned[2]
    assert any(e.kind == "flow_end" for e in col.events)
