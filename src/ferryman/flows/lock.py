"""The environment lock, held on the environment's first host while a mutating flow runs."""

from __future__ import annotations

import contextlib

from ..config import Config
from ..errors import PreconditionFailed
from ..hosts import HostPool
from ..state import LOCK_HELD, LockOwner, acquire_lock, break_lock, read_lock, release_lock
from ..transport import CommandFailed, Host


async def take(host: Host, project: str, env: str, owner: LockOwner) -> None:
    res = await host.run(acquire_lock(project, owner), timeout=30)
    if res.exit_status == LOCK_HELD:
        held = LockOwner.parse(res.stdout)
        who = f"{held.owner} since {held.since} ({held.command})" if held else "an unknown owner"
        raise PreconditionFailed(
            f"{env} is locked by {who}",
            hint=f"wait for it to finish; if it is stale: ferryman unlock {env}")
    if not res.ok:
        raise CommandFailed(res, f"cannot take the lock on {host.label}")


async def give_back(host: Host, project: str, owner: LockOwner) -> None:
    with contextlib.suppress(Exception):
        await host.run(release_lock(project, owner), timeout=30)


def lock_host(cfg: Config, pool: HostPool, env: str) -> Host:
    """The host that holds env's lock: its first."""
    return pool.host(env, pool.env(env).hosts[0].label)


async def holder(cfg: Config, pool: HostPool, env: str) -> LockOwner | None:
    """Who holds env's lock, or None when it is free."""
    res = await lock_host(cfg, pool, env).run(read_lock(cfg.project), timeout=30)
    return LockOwner.parse(res.stdout) if res.ok else None


async def break_stale(cfg: Config, pool: HostPool, env: str) -> None:
    """Removes env's lock whoever holds it: for a lock left by a flow that died."""
    await lock_host(cfg, pool, env).run(break_lock(cfg.project), timeout=30, check=True)
