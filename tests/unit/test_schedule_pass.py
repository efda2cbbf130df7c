"""One pass of the schedules against scripted hosts: what is not due touches nothing (no
lock), and an environment whose host cannot be reached fails its own jobs only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fakehost import ANY, REST, Reply, ScriptedHosts

from ferryman.events import Collector, EventBus
from ferryman.flows import schedule as flow
from ferryman.schedule import due as sd
from ferryman.transport.base import TransportError

EXTRA = """\
data:
  volumes: [shopdata]
schedules:
  test: {backup: "30 2 * * *", drill: "@weekly"}
  prod: {backup: "30 2 * * *"}
"""
READ = ["sh", "-c", ANY, "ferryman-history", REST]


def test_nothing_due_takes_no_lock_and_a_lost_host_fails_alone(hosts: ScriptedHosts,
                                                                 make_config) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(extra=EXTRA)
    now = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    done = sd.Run("prod", "backup", "2026-12-01T02:30:00+00:00", "2026-12-01T02:30:05+00:00",
                  "ok")
    hosts["prod-1"].on(READ, Reply(0, done.to_json() + "\n"))
    hosts["test-1"].on(READ, TransportError("test-1", "connection refused"))
    bus = EventBus("schedule")
    seen = Collector()
    bus.add(seen)
    runs = asyncio.run(flow.run_pass(cfg, hosts.pool(cfg), bus, now))
    got = sorted((j.due.env, j.due.job, j.result, j.exit_code) for j in runs)
    assert got == [("prod", "backup", "not due", 0), ("test", "backup", "failed", 3),
                   ("test", "drill", "failed", 3)]
    assert "connection refused" in runs[0].said or "connection refused" in runs[1].said
    # Only the records were read on PROD: no lock, no snapshot.
    assert [argv[3] for argv in hosts["prod-1"].ran] == ["ferryman-history"]
    warned = [e.data["message"] for e in seen.events if e.kind == "warn"]
    assert any("test: its schedule records cannot be read" in w for w in warned)
