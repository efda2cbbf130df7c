"""Running a data flow: the environment locks first, given back whatever happens."""

from __future__ import annotations

from typing import Any

from ...events import EventBus
from ...state import LockOwner
from ...steps import Outcome, Step, run_steps
from .. import lock
from .plan import DataState
from .site import Site


def lock_step(s: Site, owner: LockOwner, held: dict[str, bool]) -> Step:
    # The one place a data flow takes its lock.
    async def run() -> str:
        await lock.take(s.host, s.cfg.project, s.env, owner)
        held[s.env] = True
        return f"locked by {owner.owner}"

    return Step(f"lock {s.env} on {s.label}", run, params={"command": owner.command})


async def release_locks(sites: list[Site], owner: LockOwner, held: dict[str, bool]) -> None:
    for s in sites:
        if held.get(s.env):
            await lock.give_back(s.host, s.cfg.project, owner)


async def run_flow(bus: EventBus, sites: list[Site], command: str, steps: list[Step],
                   params: dict[str, Any], dry_run: bool) -> Outcome:
    owner = LockOwner.mine(command)
    held: dict[str, bool] = {}
    steps = [lock_step(s, owner, held) for s in sites] + steps
    try:
        return await run_steps(bus, steps, params, dry_run=dry_run)
    finally:
        await release_locks(sites, owner, held)


def say_where(bus: EventBus, outcome: Outcome, state: DataState, s: Site,
              dry_run: bool) -> None:
    """After an apply: what the target holds now, and where its safety backup is."""
    if dry_run or state.safety_id is None:
        return
    held = ("holds the new data" if outcome.ok else
            "holds its previous data again" if not outcome.undo_failed else
            "NEEDS ATTENTION: an undo failed")
    bus.info(f"{s.env} ({s.label}) {held}; safety backup {state.safety_id} is in "
             f"{s.folder(state.safety_id)}")
