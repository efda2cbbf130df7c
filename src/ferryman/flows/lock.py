"""The environment lock, held on the environment's first host while a mutating flow runs."""

from __future__ import annotations

import contextlib

from ..errors import PreconditionFailed
from ..state import LOCK_HELD, LockOwner, acquire_lock, release_lock
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
