"""Captures what real hosts answer to the commands of ferryman's flows, for the flow unit tests.

    python tests/unit/capture.py

Starts the demo's TEST and PROD test hosts (TEST runs v2, PROD v1: `web` by docker run, `api`
by docker-compose), runs the real planning of restart, status, release, a real release, the
planning of rollback and pruning after it, and the stop/start of the data flows, each through
a host that records every command and its answer. Writes tests/unit/data/flows/NAME.json:
{"source": {docker version of each host, ...}, "calls": [{host, argv, exit_status, stdout,
stderr}, ...]}. Removes its hosts at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferryman.config import load_config
from ferryman.config.schema import HostSpec
from ferryman.docker import commands as dc
from ferryman.docker.compose import compose_flavour
from ferryman.events import EventBus
from ferryman.flows import data as fd
from ferryman.flows import history, release, restart, rollback, status
from ferryman.hosts import HostPool, target_for
from ferryman.lab.demo import CONFIG_FILE, down, up
from ferryman.state import read_file, read_records
from ferryman.transport import CommandFailed, Host, Result, SshHost

OUT = Path(__file__).parent / "data" / "flows"

DATA_SECTION = """\
data:
  volumes: [shop-data]
  paths: [/opt/shop]
  stop: [shop-api, web]
  never_stop: [shop-db]
"""


class Recorder:
    """A real host that also keeps each command and its answer."""

    def __init__(self, inner: Host, calls: list[dict[str, Any]]) -> None:
        self.inner, self.calls, self.label = inner, calls, inner.label

    async def run(self, argv: Sequence[str], *, timeout: float | None = None,
                  input: bytes | None = None, check: bool = False) -> Result:
        res = await self.inner.run(argv, timeout=timeout, input=input, check=False)
        call = {"host": self.label, "argv": list(argv), "exit_status": res.exit_status,
                "stdout": res.stdout, "stderr": res.stderr}
        if call not in self.calls:
            self.calls.append(call)
        if check and not res.ok:
            raise CommandFailed(res)
        return res

    async def open(self, argv: Sequence[str]):  # type: ignore[no-untyped-def]
        return await self.inner.open(argv)

    async def close(self) -> None:
        await self.inner.close()


class Session:
    def __init__(self, config: Path) -> None:
        self.cfg = load_config(config)
        self.calls: list[dict[str, Any]] = []
        self.pool = HostPool(self.cfg, make_host=self._make)

    def _make(self, env: str, spec: HostSpec) -> Host:
        return Recorder(SshHost(target_for(self.cfg, spec), self.cfg.ssh.command_timeout),
                        self.calls)

    def take(self) -> list[dict[str, Any]]:
        out, self.calls[:] = list(self.calls), []
        return out


async def _versions(s: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for env in ("test", "prod"):
        for label, host in s.pool.hosts(env):
            res = await host.run(dc.docker_version(), timeout=30)
            v = json.loads(res.stdout)
            out[label] = {"docker": v["Server"]["Version"], "api": v["Server"]["ApiVersion"],
                          "compose": await compose_flavour(host)}
    s.take()
    return out


def _write(name: str, source: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"source": source, "calls": calls}, indent=1) + "\n")
    print(f"{path}: {len(calls)} calls", file=sys.stderr)


async def capture(config: Path, lab_exec: Any) -> None:
    s = Session(config)
    cfg, pool = s.cfg, s.pool
    bus = EventBus("capture")
    try:
        source = {"captured": datetime.now(UTC).isoformat(timespec="seconds"),
                  "hosts": await _versions(s),
                  "scene": "demo: TEST runs ferryman-app:v2, PROD v1; web by docker run "
                           "(--restart unless-stopped), api by docker-compose 1.29 "
                           "(container shop-api); PROD's app_config.json names TEST"}

        # Planning reads, before anything changed.
        await restart.plan(cfg, pool, "test", [])
        await pool.host("test", "test-1").run(dc.inspect_containers(["gone"]), timeout=30)
        await status.collect(pool, ["test", "prod"])
        await history.read_history(cfg, pool, "prod")  # no history yet
        for env, label in (("test", "test-1"), ("prod", "prod-1")):
            await pool.host(env, label).run(read_file(CONFIG_FILE), timeout=30)
            await pool.host(env, label).run(read_file("/opt/shop/missing.json"), timeout=30)
        plan = await release.plan_release(cfg, pool, "test", "prod", [], bus)
        _write("before_release", source, s.take())

        # A real release (its commands not kept; it records itself in PROD's history); then
        # what rollback and pruning read after it.
        outcome = await release.execute(cfg, pool, plan, bus)
        assert outcome.ok, outcome.error
        s.take()
        for n in range(2):  # older set-aside containers, as earlier releases leave them
            lab_exec("prod", ["docker", "create", "--name",
                              f"web.ferryman-r20260101-00000{n}", "ferryman-app:v1"])
        await pool.host("prod", "prod-1").run(read_records(cfg.project), timeout=30)
        released = (await history.read_history(cfg, pool, "prod")).records[-1].services
        await rollback.plan_rollback(cfg, pool, "prod", None)
        await history.prune_kept(cfg, pool, "prod", released, bus)
        # keep_releases 1: the two older set-aside containers go, their image stays (in use).
        await history.prune_kept(cfg.model_copy(update={"keep_releases": 1}), pool, "prod",
                                 released, bus)
        await pool.host("prod", "prod-1").run(dc.container_logs("web", tail=40), timeout=30)
        await status.collect(pool, ["prod"])
        _write("after_release", source, s.take())

        # Data: the containers a snapshot stops, stopped and started again for real.
        lab_exec("test", ["docker", "volume", "create", "shop-data"])
        site = fd.site(cfg, pool, "test")
        await fd.live_folders(site, fd.wanted_items(site.data))
        q = fd.Quiesce(site)
        await q.stop()
        await q.start()
        await fd.list_backups(site)
        await site.host.run(["cat", f"{site.folder('b20260101-000000')}/manifest.json"],
                            timeout=30)
        _write("data_test", source, s.take())
    finally:
        await pool.close()


def main() -> int:
    prefix = f"ferryman-capture-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "demo"
        demo = up(workdir, prefix=prefix)
        try:
            with demo.config.open("a") as f:
                f.write(DATA_SECTION)

            def lab_exec(role: str, argv: list[str]) -> None:
                demo.lab.exec(demo.hosts[role], argv)

            asyncio.run(capture(demo.config, lab_exec))
        finally:
            down(workdir, prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
