"""`ferryman restart`: the everyday quick restart, waiting for health after each service."""

from __future__ import annotations

import shlex

from ..config import Config
from ..docker import commands as dc
from ..docker.inspect import parse_containers
from ..errors import PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool, Placement
from ..journal import Journal
from ..state import stamp_id
from ..steps import Outcome, Step, run_steps
from .health import wait_healthy
from .lock import env_lock


async def plan(cfg: Config, pool: HostPool, env: str, services: list[str]) -> list[Step]:
    await pool.resolve(env)
    places = pool.placements(env, services or None)
    await _require_containers(pool, places)
    steps: list[Step] = []
    for p in places:
        host = pool.host(p.env, p.host)
        argv = dc.restart_container(p.container)
        health = cfg.services[p.service].health

        async def restart(host=host, argv=argv) -> None:
            await host.run(argv, timeout=120, check=True)

        async def gate(host=host, p=p, health=health) -> str:
            return await wait_healthy(host, p.service, p.container, health, env=p.env)

        params = {"env": env, "host": p.host, "service": p.service, "container": p.container}
        steps.append(Step(f"restart {p.service} on {p.host}", restart, params=params,
                          host=p.host, commands=[shlex.join(argv)]))
        steps.append(Step(f"health of {p.service} on {p.host}", gate, params=params, host=p.host))
    return steps


async def _require_containers(pool: HostPool, places: list[Placement]) -> None:
    missing = []
    for p in places:
        res = await pool.host(p.env, p.host).run(dc.inspect_containers([p.container]), timeout=30)
        if p.container not in parse_containers(res.stdout):
            missing.append(f"{p.container} on {p.host}")
    if missing:
        raise PreconditionFailed(
            f"cannot restart: no container {', '.join(missing)}",
            hint="ferryman status ENV shows what runs there",
        )


async def execute(cfg: Config, pool: HostPool, env: str, services: list[str], steps: list[Step],
                  bus: EventBus, dry_run: bool = False) -> Outcome:
    lock = env_lock(cfg, pool, env, f"restart {env} {' '.join(services) or 'all'}")
    journal = Journal("restart", stamp_id("s"), env, cfg.project, lock.owner.owner,
                      lock.owner.command, hosts=[(lock.label, lock.host)])
    return await run_steps(bus, steps, {"env": env, "services": services or "all"},
                           locks=[lock], journal=journal, dry_run=dry_run)
