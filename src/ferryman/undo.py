"""Undos as data: each kind of change registers how to undo it from plain JSON.

A step keeps `undo_data = {"kind": ..., ...}`; its live undo calls the same registered
function, so what `ferryman abort` runs from a journal, in another process, is exactly what the
flow itself would have run. Every undo is safe to run after a partial step and to run twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Config
from .config.schema import Health
from .transport import Host

if TYPE_CHECKING:
    from .hosts import HostPool


@dataclass
class UndoContext:
    """Where undos run: the environment's hosts and its services' health checks."""

    cfg: Config
    pool: HostPool
    env: str

    def host(self, label: str) -> Host:
        """A host of the environment, or of another one the flow changed (sync-data stops
        FROM's containers too): host names are looked up there next."""
        envs = [self.env, *(e for e in self.cfg.environments if e != self.env)]
        env = next((e for e in envs if self.cfg.environments[e].host(label) is not None),
                   self.env)
        return self.pool.host(env, label)

    def health(self, service: str) -> Health | None:
        svc = self.cfg.services.get(service)
        return svc.health if svc else None


Undoer = Callable[[UndoContext, dict[str, Any]], Awaitable[Any]]
UNDOERS: dict[str, Undoer] = {}


def undoer(kind: str) -> Callable[[Undoer], Undoer]:
    def register(fn: Undoer) -> Undoer:
        UNDOERS[kind] = fn
        return fn
    return register


def bound(ctx: UndoContext, data: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """The live undo of a step: the registered function over the step's undo data."""
    async def undo() -> Any:
        return await run_undo(ctx, data)
    return undo


async def run_undo(ctx: UndoContext, data: dict[str, Any]) -> Any:
    kind = data.get("kind", "")
    fn = UNDOERS.get(kind)
    if fn is None:
        raise KeyError(f"no undo registered for '{kind}'")
    return await fn(ctx, data)


@undoer("commands")
async def _undo_commands(ctx: UndoContext, d: dict[str, Any]) -> None:
    """Runs each argv in order; each is safe to run again (remove, unswap, load a dump)."""
    host = ctx.host(d["host"])
    for argv in d["argvs"]:
        await host.run(argv, timeout=d.get("timeout"), check=True)


@undoer("all")
async def _undo_all(ctx: UndoContext, d: dict[str, Any]) -> None:
    """Several undos, on several hosts (sync-data's snapshot lands on FROM and TO at once):
    each is tried, and the first failure is raised once all have run."""
    failed: BaseException | None = None
    for part in d["parts"]:
        try:
            await run_undo(ctx, part)
        except Exception as exc:  # the other parts still run
            failed = failed or exc
    if failed is not None:
        raise failed
