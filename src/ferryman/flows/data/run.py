"""Running a data flow: under the lock of every environment it touches (taken by the step
runner), with its journal on those hosts."""

from __future__ import annotations

from typing import Any

from ...events import EventBus
from ...journal import Journal
from ...locking import EnvLock, LockOwner
from ...steps import Outcome, Step, run_steps
from .plan import DataState
from .site import Site


async def run_flow(bus: EventBus, sites: list[Site], command: str, steps: list[Step],
                   params: dict[str, Any], dry_run: bool) -> Outcome:
    owner = LockOwner.mine(command)
    locks = [EnvLock(s.env, s.label, s.host, s.cfg.project, owner) for s in sites]
    journal = Journal(bus.flow, str(params.get("id", "")), sites[-1].env, sites[-1].cfg.project,
                      owner.owner, owner.command, context=dict(params),
                      hosts=[(s.label, s.host) for s in sites])
    return await run_steps(bus, steps, params, locks=locks, journal=journal, dry_run=dry_run)


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
