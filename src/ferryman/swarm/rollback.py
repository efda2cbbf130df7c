"""`ferryman rollback ENV` where ENV is a Swarm: each service of the release back to the image
it ran before, by the same update (pinned, health-gated, outcome from UpdateStatus), on the
nodes that still hold that image (labelled so first)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..errors import BadInput, PreconditionFailed
from ..events import EventBus
from ..flows.history import read_history
from ..flows.lock import env_lock
from ..flows.release import FlowPlan
from ..flows.rollback import pick
from ..hosts import HostPool
from ..record import Record, ServiceChange
from ..state import release_id
from ..undo import UndoContext
from .facts import Node
from .release import labels_step, reach, read_swarm, update_step
from .status import images_on


@dataclass
class SwarmRollbackPlan(FlowPlan):
    target: Record | None = None

    def journal_context(self) -> dict:  # type: ignore[type-arg]
        return {**super().journal_context(),
                "rolls_back": self.target.id if self.target else None}


async def plan_swarm_rollback(cfg: Config, pool: HostPool, env: str, wanted: str | None,
                              bus: EventBus) -> SwarmRollbackPlan:
    swarm = cfg.environments[env].swarm
    assert swarm is not None
    target = pick(await read_history(cfg, pool, env), env, wanted)
    entries = [e for e in target.services if e.mode == "swarm"]
    unknown = [e.service for e in entries if e.service not in cfg.services]
    if unknown:
        raise BadInput(f"release {target.id} names {', '.join(unknown)}, which ferryman.yml "
                       "no longer has")
    state = await read_swarm(cfg, pool, env, [e.service for e in entries])
    rid = release_id()
    plan = SwarmRollbackPlan(rid, env, env_lock(cfg, pool, env, f"rollback {env} ({rid})"),
                             kind="rollback", target=target)
    ctx = UndoContext(cfg, pool, env)
    holders: dict[str, list[Node]] = {}
    updates = []
    for e in entries:
        svc = state.services[e.service]
        if e.new is None or svc.image != e.new.ref:
            released = e.new.ref if e.new else "?"
            raise PreconditionFailed(f"{svc.name} runs {svc.image}, not {released} of release "
                                     f"{target.id}: a later change stands",
                                     hint=f"ferryman history {env}")
        if e.old is None or not e.old.id:
            raise PreconditionFailed(f"release {target.id} does not know the id of the image "
                                     f"{svc.name} ran before ({e.old.ref if e.old else '?'})")
        r = reach(cfg, env, svc, state.nodes, e.service)
        have = []
        for label, node in r.hosts.items():
            held = await images_on(pool, env, label, [e.old.ref])
            if held.get(e.old.ref) == e.old.id:
                have.append(node)
            else:
                plan.warnings.append(f"{node.hostname} lacks {e.old.ref}: it gets no task of "
                                     f"{svc.name} (ferryman doctor {env} --fix loads it)")
        plan.warnings += [f"{e.service}: {m}" for m in r.missing]
        if not have:
            raise PreconditionFailed(f"no node of {env} holds {e.old.ref} ({e.old.id[:19]}) "
                                     f"for {svc.name}")
        holders.setdefault(e.old.id, []).extend(have)
        plan.changes.append(ServiceChange(service=e.service, host=state.manager,
                                          container=svc.name, mode="swarm", new=e.old,
                                          old=e.new))
        health = cfg.services[e.service].health
        gate = health.start_period + health.interval * health.retries if health else None
        active = sum(1 for n in have if n.availability == "active")
        updates.append(update_step(plan, ctx, pool.host(env, state.manager), svc, e.old.ref,
                                   e.old.id, active, gate, swarm, bus))
    if not updates:
        raise BadInput(f"release {target.id} changed no Swarm service on {env}")
    plan.steps.append(labels_step(ctx, env, state.manager, holders))
    plan.steps.extend(updates)
    return plan
