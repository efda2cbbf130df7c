"""The lock of an environment, as every mutating flow hands it to the step runner."""

from __future__ import annotations

from ..config import Config
from ..hosts import HostPool
from ..locking import EnvLock, LockOwner


def env_lock(cfg: Config, pool: HostPool, env: str, command: str) -> EnvLock:
    """The lock of `env`, on its first host, owned by this run."""
    label = pool.env(env).hosts[0].label
    return EnvLock(env, label, pool.host(env, label), cfg.project, LockOwner.mine(command))
