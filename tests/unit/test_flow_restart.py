"""restart: planning reads only, refuses a missing container, and a failed restart says where."""

from __future__ import annotations

import asyncio

import pytest
from fakehost import ANY, REST, Capture, Reply, ScriptedHosts

from ferryman.errors import PreconditionFailed
from ferryman.events import Collector, EventBus
from ferryman.flows import restart

BEFORE = Capture.load("before_release")
INSPECT = ["docker", "inspect", "--type", "container"]


def test_plan_reads_only_and_lists_restart_then_health(hosts: ScriptedHosts,
                                                       make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    steps = asyncio.run(restart.plan(cfg, hosts.pool(cfg), "test", []))
    assert [s.name for s in steps] == [
        "restart web on test-1", "health of web on test-1",
        "restart api on test-1", "health of api on test-1"]
    assert steps[0].commands == ["docker restart --time 10 web"]
    assert steps[2].commands == ["docker restart --time 10 shop-api"]
    assert hosts["test-1"].ran == [[*INSPECT, "web"], [*INSPECT, "shop-api"]]


def test_plan_refuses_a_missing_container_with_exit_3(hosts: ScriptedHosts,
                                                      make_config) -> None:
    cfg = make_config(extra_services="  legacy:\n    container: gone\n")
    hosts["test-1"].replay(BEFORE)
    with pytest.raises(PreconditionFailed) as err:
        asyncio.run(restart.plan(cfg, hosts.pool(cfg), "test", ["web", "legacy"]))
    assert err.value.exit_code == 3
    assert "no container gone on test-1" in str(err.value)
    assert not hosts["test-1"].ran_matching("docker", "restart", ...)


def test_a_failed_restart_stops_the_flow_there(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    host = hosts["test-1"].replay(BEFORE).keeps_state()
    host.on(["docker", "restart", "--time", "10", "web"], Reply(0, "web\n"))
    host.on(["docker", "restart", "--time", "10", "shop-api"],
            Reply(1, "", "Error response from daemon: Cannot restart container shop-api\n"))
    host.on(["sh", "-c", ANY, "ferryman-http", "http://127.0.0.1:8080/health", "5"], Reply(0))

    async def go():  # type: ignore[no-untyped-def]
        steps = await restart.plan(cfg, hosts.pool(cfg), "test", [])
        bus = EventBus("restart")
        bus.add(Collector())
        return await restart.execute(cfg, hosts.pool(cfg), "test", [], steps, bus)

    outcome = asyncio.run(go())
    assert not outcome.ok and outcome.exit_code == 1
    # The runner takes TEST's lock first: step 1.
    assert outcome.failed_step == "step 4/5 restart api on test-1"
    assert outcome.undone == []  # a restart has nothing to undo
    assert host.ran_matching("sh", "-c", ANY, "ferryman-lock", REST)
    assert host.ran_matching("sh", "-c", ANY, "ferryman-unlock", REST)
    assert [a for a in host.changes() if a[:2] != ["docker", "inspect"]] == [
        ["docker", "restart", "--time", "10", "web"],
        ["sh", "-c", ANY, "ferryman-http", "http://127.0.0.1:8080/health", "5"],
        ["docker", "restart", "--time", "10", "shop-api"]]
