"""The environment lock, held on the environment's first host while a mutating flow runs."""

from __future__ import annotations

from ..errors import PreconditionFailed
from ..events import EventBus
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


async def give_back(host: Host, project: str, owner: LockOwner, bus: EventBus | None = None,
                    env: str = "") -> bool:
    """Frees the lock if `owner` still holds it. When the host cannot be asked (it was the
    host lost), the lock stays: say so, and how to free it, instead of failing the flow."""
    try:
        res = await host.run(release_lock(project, owner), timeout=30)
        if res.ok:
            return True
        why = (res.stderr.strip() or f"exit {res.exit_status}").splitlines()[-1]
    except Exception as exc:  # the flow's own outcome is what the operator must see
        why = str(exc)
    if bus is not None:
        bus.warn(f"the lock of {env} on {host.label} is still held ({why}); once "
                 f"{host.label} answers: ferryman unlock {env}")
    return False
