"""The lock of an environment, as every mutating flow hands it to the step runner; and who
holds it, and breaking it, for `ferryman unlock`."""

from __future__ import annotations

from ..config import Config
from ..hosts import HostPool
from ..locking import EnvLock, LockOwner, break_lock, read_lock
from ..transport import Host


def lock_host(cfg: Config, pool: HostPool, env: str) -> tuple[str, Host]:
    """The host that holds env's lock: its first."""
    label = pool.env(env).hosts[0].label
    return label, pool.host(env, label)


def env_lock(cfg: Config, pool: HostPool, env: str, command: str) -> EnvLock:
    """The lock of `env`, on its first host, owned by this run."""
    label, host = lock_host(cfg, pool, env)
    return EnvLock(env, label, host, cfg.project, LockOwner.mine(command))


async def holder(cfg: Config, pool: HostPool, env: str) -> LockOwner | None:
    """Who holds env's lock, or None when it is free."""
    res = await lock_host(cfg, pool, env)[1].run(read_lock(cfg.project), timeout=30)
    return LockOwner.parse(res.stdout) if res.ok else None


async def break_stale(cfg: Config, pool: HostPool, env: str) -> None:
    """Removes env's lock whoever holds it: for a lock left by a flow that died."""
    await lock_host(cfg, pool, env)[1].run(break_lock(cfg.project), timeout=30, check=True)
