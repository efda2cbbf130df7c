"""Data flow planning on TEST as a real engine answered: which containers stop, in which
order, that they start again (also when the snapshot fails), and refusals of bad ids."""

from __future__ import annotations

import asyncio

import pytest
from fakehost import ANY, REST, Capture, Reply, ScriptedHosts

from ferryman.data import archive as ar
from ferryman.docker import images as di
from ferryman.errors import BadInput, PreconditionFailed
from ferryman.events import Collector, EventBus
from ferryman.flows import data as fd
from ferryman.transport.base import short_command

DATA = Capture.load("data_test")
# Not in the capture: what the demo's hosts answer to the compressor probe (both installed).
TOOLS = Reply(0, "zstd\ngzip\n")
INSPECT = ["docker", "inspect", "--type", "container"]
SECTION = """\
data:
  volumes: [shop-data]
  paths: [/opt/shop]
  stop: [shop-api, web]
  never_stop: [shop-db]
"""


def _bus() -> tuple[EventBus, Collector]:
    bus = EventBus("data")
    seen = Collector()
    bus.add(seen)
    return bus, seen


def _site(cfg, hosts: ScriptedHosts) -> fd.Site:  # type: ignore[no-untyped-def]
    return fd.site(cfg, hosts.pool(cfg), "test")


def _healthy_api(host) -> None:  # type: ignore[no-untyped-def]
    # shop-api as the engine showed it once its healthcheck had passed (health looks once).
    host.on([*INSPECT, "shop-api"], DATA.replies("test-1", [*INSPECT, "shop-api"])[-1])


def _changes(host) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [a for a in host.ran if a[:2] in (["docker", "stop"], ["docker", "start"])]


def test_stop_in_the_configured_order_then_start_in_reverse(hosts: ScriptedHosts,
                                                            make_config) -> None:
    cfg = make_config(extra=SECTION)
    test = hosts["test-1"].replay(DATA)
    _healthy_api(test)
    q = fd.Quiesce(_site(cfg, hosts))
    assert asyncio.run(q.stop()) == "stopped shop-api, web"
    assert asyncio.run(q.start()) == "started web, shop-api"
    assert _changes(test) == [["docker", "stop", "shop-api"], ["docker", "stop", "web"],
                              ["docker", "start", "web"], ["docker", "start", "shop-api"]]
    # never_stop names a container that is neither stopped nor started.
    assert not [a for a in test.ran if "shop-db" in a]


def test_containers_already_stopped_are_not_started_afterwards(hosts: ScriptedHosts,
                                                               make_config) -> None:
    cfg = make_config(extra=SECTION)
    stopped = DATA.replies("test-1", [*INSPECT, "shop-api", "web"])[-1]
    test = hosts["test-1"].on([*INSPECT, "shop-api", "web"], stopped)
    q = fd.Quiesce(_site(cfg, hosts))
    assert asyncio.run(q.stop()) == "stopped nothing (all were stopped)"
    assert asyncio.run(q.start()) == "started nothing"
    assert _changes(test) == []


def test_a_container_that_keeps_running_is_refused(hosts: ScriptedHosts,
                                                   make_config) -> None:
    cfg = make_config(extra=SECTION)
    running = DATA.replies("test-1", [*INSPECT, "shop-api", "web"])[0]
    hosts["test-1"].replay(DATA).on([*INSPECT, "shop-api", "web"], running)  # a supervisor
    q = fd.Quiesce(_site(cfg, hosts))
    with pytest.raises(PreconditionFailed) as err:
        asyncio.run(q.stop())
    assert err.value.exit_code == 3
    assert str(err.value) == "still running after docker stop: shop-api, web"
    assert q.stopped == ["shop-api", "web"]  # so the undo starts them


def test_backup_dry_run_plans_lock_stop_snapshot_start(hosts: ScriptedHosts,
                                                       make_config) -> None:
    cfg = make_config(extra=SECTION)
    test = hosts["test-1"].replay(DATA).on(di.compressors(), TOOLS)
    bus, seen = _bus()
    outcome, manifest = asyncio.run(fd.backup(cfg, hosts.pool(cfg), "test", bus, dry_run=True))
    assert outcome.ok and manifest is None
    planned = [e.data for e in seen.events if e.kind == "step_plan"]
    assert [p["name"] for p in planned] == [
        "lock test on test-1", "stop business containers on test-1",
        "snapshot test on test-1", "start business containers on test-1"]
    assert planned[1]["commands"] == ["docker stop shop-api", "docker stop web"]
    assert planned[1]["params"]["keep_running"] == ["shop-db"]
    assert planned[3]["commands"] == ["docker start web", "docker start shop-api"]
    # The snapshot's lines are the argvs it runs: the volume's mountpoint as the engine said.
    into = planned[2]["params"]["into"]
    assert planned[2]["commands"][:2] == [
        short_command(ar.pack("/var/lib/docker/volumes/shop-data/_data",
                              f"{into}/volume-shop-data.tar.zst", "zstd")),
        short_command(ar.pack("/opt/shop", f"{into}/path-opt_shop.tar.zst", "zstd"))]
    # The dry run only looked: the volume and the folder exist, which compressor is there.
    assert test.ran == [
        ["docker", "volume", "inspect", "--format", "{{.Name}} {{.Mountpoint}}", "shop-data"],
        ["sh", "-c", ANY, "ferryman-files", "/opt/shop"], di.compressors()]


def test_backup_refuses_a_missing_volume_before_stopping_anything(hosts: ScriptedHosts,
                                                                  make_config) -> None:
    cfg = make_config(extra=SECTION)
    test = hosts["test-1"].replay(DATA).on(
        ["docker", "volume", "inspect", REST],
        Reply(1, "", "Error: No such volume: shop-data\n"))
    with pytest.raises(PreconditionFailed) as err:
        asyncio.run(fd.backup(cfg, hosts.pool(cfg), "test", EventBus("data")))
    assert err.value.exit_code == 3
    assert str(err.value) == "no volume shop-data on test-1"
    assert _changes(test) == [] and not test.ran_matching("sh", "-c", ANY, "ferryman-lock", REST)


def test_a_failed_snapshot_still_starts_every_container(hosts: ScriptedHosts,
                                                        make_config) -> None:
    cfg = make_config(extra=SECTION)
    test = hosts["test-1"].replay(DATA).on(di.compressors(), TOOLS)
    test.keeps_state()
    test.on(ar.host_clock(), Reply(0, "2026-01-01T10:00:00.000000000Z\n"))
    # The snapshot fails at its first archive: the volume's folder went away meanwhile.
    test.on(["sh", "-c", ANY, "ferryman-pack", REST],
            Reply(66, "", "no such folder: /var/lib/docker/volumes/shop-data/_data\n"))
    test.on(["sh", "-c", ANY, "ferryman-http", REST], Reply(0))
    _healthy_api(test)
    test.on(["rm", "-rf", "--", REST])
    outcome, _ = asyncio.run(fd.backup(cfg, hosts.pool(cfg), "test", EventBus("data")))
    assert not outcome.ok and outcome.failed_step == "step 3/4 snapshot test on test-1"
    assert outcome.undone == ["snapshot test on test-1", "stop business containers on test-1"]
    assert _changes(test) == [["docker", "stop", "shop-api"], ["docker", "stop", "web"],
                              ["docker", "start", "web"], ["docker", "start", "shop-api"]]
    assert test.ran_matching("sh", "-c", ANY, "ferryman-unlock", REST)  # the lock went back


@pytest.mark.parametrize("bad", ["../etc", "b2026", "B20260101-000000", "b20260101-000000;x"])
def test_restore_refuses_what_is_not_a_backup_id_without_asking_the_host(
        hosts: ScriptedHosts, make_config, bad: str) -> None:
    cfg = make_config(extra=SECTION)
    with pytest.raises(BadInput) as err:
        asyncio.run(fd.restore(cfg, hosts.pool(cfg), "test", bad, EventBus("data")))
    assert err.value.exit_code == 2
    assert str(err.value) == f"'{bad}' is not a backup id (like b20261123-101500)"
    assert hosts["test-1"].ran == []


def test_restore_refuses_a_backup_the_host_does_not_have(hosts: ScriptedHosts,
                                                         make_config) -> None:
    cfg = make_config(extra=SECTION)
    hosts["test-1"].replay(DATA)
    with pytest.raises(BadInput) as err:
        asyncio.run(fd.restore(cfg, hosts.pool(cfg), "test", "b20260101-000000",
                               EventBus("data")))
    assert err.value.exit_code == 2
    assert str(err.value) == "no backup b20260101-000000 on test-1 (has: none)"
    assert _changes(hosts["test-1"]) == []


def test_sync_refuses_from_equal_to(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config(extra=SECTION)
    with pytest.raises(BadInput) as err:
        asyncio.run(fd.sync(cfg, hosts.pool(cfg), "test", "test", EventBus("data")))
    assert err.value.exit_code == 2
    assert hosts.by_label == {}
