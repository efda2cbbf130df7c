"""`ferryman release FROM TO` where TO is a Swarm: the image on every eligible node first,
verified by id, then each service updated by Swarm under ferryman's health gate.

Steps: lock TO; stream the image from FROM to every node its service may run on (one
`docker save` for all of them), each verified by id; tag it with the release id there (an
immutable name no node resolves elsewhere); label those nodes as holding it; then each service
in turn: `docker service update --image REF --no-resolve-image` constrained to those labels,
its outcome read from UpdateStatus. A service Swarm rolled back fails the release, and the
undo rolls back the services already updated.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..config.schema import Swarm
from ..docker import images as di
from ..errors import BadInput, FlowFailed, PreconditionFailed
from ..events import EventBus
from ..flows import release as rel
from ..flows.lock import env_lock
from ..hosts import HostPool, Placement
from ..record import Image, ServiceChange
from ..state import release_id
from ..steps import Step
from ..transport import CommandFailed, Host
from ..transport.base import short_command
from ..undo import UndoContext, bound, undoer
from . import commands as sc
from . import facts as sf
from .facts import Node, Service

POLL = 2.0  # seconds between two reads of UpdateStatus


def manager_label(cfg: Config, env: str) -> str:
    swarm = cfg.environments[env].swarm
    assert swarm is not None
    return next(h.label for h in cfg.environments[env].hosts if h.address == swarm.manager)


def node_host(cfg: Config, env: str, node: Node) -> str | None:
    """The host label ferryman reaches a node by: the host named as the node's hostname,
    else the host whose address is the node's."""
    hosts = cfg.environments[env].hosts
    by_name = next((h.label for h in hosts if h.label == node.hostname), None)
    return by_name or next((h.label for h in hosts if h.hostname == node.addr), None)


@dataclass
class SwarmState:
    manager: str
    nodes: list[Node]
    services: dict[str, Service]  # by ferryman service name


async def read_swarm(cfg: Config, pool: HostPool, env: str,
                     services: list[str]) -> SwarmState:
    swarm = cfg.environments[env].swarm
    assert swarm is not None
    label = manager_label(cfg, env)
    mgr = pool.host(env, label)
    ids = await mgr.run(sc.node_ids(), timeout=60)
    if not ids.ok:
        raise PreconditionFailed(f"{label} (environments.{env}.swarm.manager) is not a Swarm "
                                 f"manager: {ids.stderr.strip()}", host=label,
                                 hint="docker swarm init there, or name a manager")
    nodes = sf.parse_nodes((await mgr.run(sc.inspect_nodes(ids.stdout.split()),
                                          timeout=60)).stdout)
    names = {s: swarm.service_name(s) for s in services}
    found = sf.parse_services((await mgr.run(sc.inspect_services(list(names.values())),
                                             timeout=60)).stdout)
    missing = [f"{s} ({n})" for s, n in names.items() if n not in found]
    if missing:
        raise BadInput(f"no Swarm service for {', '.join(missing)} on {env} (asked {label}); "
                       f"it has: {', '.join(sorted(found)) or 'none of these'}",
                       hint=f"deploy the stack first, or map the names under "
                            f"environments.{env}.swarm.services")
    return SwarmState(label, nodes, {s: found[n] for s, n in names.items()})


@dataclass
class Reach:
    """Where one service's image must be: the nodes its placement allows."""

    service: str
    hosts: dict[str, Node] = field(default_factory=dict)  # host label -> node, reachable
    missing: list[str] = field(default_factory=list)  # nodes named, with why


def reach(cfg: Config, env: str, svc: Service, nodes: list[Node], service: str) -> Reach:
    r = Reach(service)
    for node in nodes:
        if not sf.matches(node, svc.placement):
            continue
        label = node_host(cfg, env, node)
        if not node.up:
            r.missing.append(f"{node.hostname} is {node.state}")
        elif label is None:
            r.missing.append(f"{node.hostname} ({node.addr}) has no SSH address under "
                             f"environments.{env}.hosts (name it {node.hostname})")
        else:
            r.hosts[label] = node
    return r


def release_ref(src_ref: str, service: str, project: str, rid: str) -> str:
    """REPOSITORY:RID: a name that only ever means this release's image."""
    return f"{repository(src_ref, service, project)}:{rid}"


def repository(src_ref: str, service: str, project: str) -> str:
    if src_ref.startswith("sha256:"):
        return f"{project}-{service}".lower()
    last = src_ref.rsplit("/", 1)[-1]
    return src_ref.rsplit(":", 1)[0] if ":" in last else src_ref


def release_refs(sources: dict[str, rel.Source], project: str, rid: str) -> dict[str, str]:
    """Each service's REPOSITORY:RID; services of one repository that run different images
    get -SERVICE after it, so that one name never means two images."""
    ids: dict[str, set[str]] = {}
    for name, src in sources.items():
        ids.setdefault(repository(src.ref, name, project), set()).add(src.facts.image_id)
    out = {}
    for name, src in sources.items():
        repo = repository(src.ref, name, project)
        out[name] = f"{repo}:{rid}" + (f"-{name}" if len(ids[repo]) > 1 else "")
    return out


@dataclass
class SwarmPlan(rel.Plan):
    manager: str = ""
    reaches: dict[str, Reach] = field(default_factory=dict)


async def plan_swarm_release(cfg: Config, pool: HostPool, src_env: str, dst_env: str,
                             services: list[str], bus: EventBus,
                             transfer: rel.Transfer | None = None, *,
                             allow_missing_nodes: bool = False) -> SwarmPlan:
    for env in (src_env, dst_env):
        pool.env(env)
    swarm = cfg.environments[dst_env].swarm
    assert swarm is not None
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    if cfg.environments[src_env].swarm is not None:
        raise BadInput(f"{src_env} is a Swarm: release from an environment of hosts "
                       "(the images are read from its running containers)")
    chosen = services or list(cfg.services)
    sources = await rel.read_sources(pool, src_env, chosen)
    rel.check_policy(cfg, dst_env, sources)
    state = await read_swarm(cfg, pool, dst_env, list(sources))
    rid = release_id()
    lock = env_lock(cfg, pool, dst_env, f"release {src_env} {dst_env} ({rid})")
    plan = SwarmPlan(rid, dst_env, lock, source_env=src_env, sources=sources,
                     manager=state.manager)
    plan.refs = release_refs(sources, cfg.project, rid)
    plan.record_extra["tag"] = rid
    missing = []
    for name, svc in state.services.items():
        r = reach(cfg, dst_env, svc, state.nodes, name)
        plan.reaches[name] = r
        missing += [f"{name}: {m}" for m in r.missing]
        if not r.hosts:
            raise PreconditionFailed(f"no node of {dst_env} can take {name} "
                                     f"({svc.name}): {'; '.join(r.missing) or 'none eligible'}")
    if missing and not allow_missing_nodes:
        raise PreconditionFailed(
            f"nodes of {dst_env} that may run these services cannot be given the image: "
            + "; ".join(missing), hint="bring them back, or --allow-missing-nodes (they get "
            "no task of the new version until `ferryman doctor --fix` loads it there)")
    for m in missing:
        plan.warnings.append(f"left without the image (--allow-missing-nodes): {m}")
    ctx = UndoContext(cfg, pool, dst_env)
    transfer = transfer or rel.LayerTransfer()
    per_host: dict[str, list[Placement]] = {}
    for name, r in plan.reaches.items():
        for label in r.hosts:
            per_host.setdefault(label, []).append(Placement(dst_env, label, name, ""))
    wanted: list[rel.Wanted] = []
    for label, places in per_host.items():
        ws, notes = await rel._wanted(pool, plan, label, places, transfer)
        wanted.extend(ws)
        plan.notes.extend(notes)
    plan.steps.extend(rel._transfer_steps(wanted, transfer, bus, ctx))
    for label, places in per_host.items():
        plan.steps.extend(await rel._tag_steps(pool, plan, label, places, ctx))
    plan.steps.append(label_step(plan, ctx, state))
    mgr = pool.host(dst_env, state.manager)
    for name, svc in state.services.items():
        src = sources[name]
        old = await mgr.run(di.image_id(svc.image), timeout=30)
        old_id = old.stdout.strip() if old.ok else ""
        change = ServiceChange(
            service=name, host=state.manager, container=svc.name, mode="swarm",
            old=Image(ref=svc.image, id=old_id),
            new=Image(ref=plan.refs[name], id=src.facts.image_id))
        plan.changes.append(change)
        if (old_id == src.facts.image_id
                and svc.own_constraints == [sc.image_constraint(old_id)]):
            change.mode, change.new = "unchanged", change.old
            plan.notes.append(f"{svc.name} already runs {src.ref} as {svc.image}")
            continue
        health = cfg.services[name].health
        gate = health.start_period + health.interval * health.retries if health else None
        plan.steps.append(update_step(plan, ctx, mgr, svc, plan.refs[name],
                                      src.facts.image_id,
                                      active_nodes(plan.reaches[name]), gate, swarm, bus))
    return plan


def label_step(plan: SwarmPlan, ctx: UndoContext, state: SwarmState) -> Step:
    """Nodes that now hold an image are labelled so: the constraint each service gets."""
    holders: dict[str, list[Node]] = {}
    for name, r in plan.reaches.items():
        holders.setdefault(plan.sources[name].facts.image_id, []).extend(r.hosts.values())
    return labels_step(ctx, plan.env, state.manager, holders)


def labels_step(ctx: UndoContext, env: str, manager: str,
                holders: dict[str, list[Node]]) -> Step:
    """Labels each node as holding each image (image id -> nodes); the undo takes off the
    labels it added."""
    adds: list[list[str]] = []
    undo: list[list[str]] = []
    for image_id, nodes in holders.items():
        label = sc.image_label(image_id)
        lacking = list(dict.fromkeys(n.id for n in nodes if n.labels.get(label) != "true"))
        adds += sc.label_nodes(label, lacking, add=True)
        undo += sc.label_nodes(label, lacking, add=False)
    mgr = ctx.pool.host(env, manager)

    async def run() -> str:
        for argv in adds:
            await mgr.run(argv, timeout=60, check=True)
        return f"{len(adds)} node label(s) added"

    data = {"kind": "commands", "host": manager, "argvs": undo, "timeout": 60}
    return Step(f"label the nodes holding the images on {manager}", run,
                bound(ctx, data), undo_data=data, host=manager,
                commands=[f"{manager}: {short_command(a)}" for a in adds],
                undo_if_failed=True)


def active_nodes(r: Reach) -> int:
    """Nodes that may take a new task of the service now (up, given the image, not drained)."""
    return sum(1 for n in r.hosts.values() if n.availability == "active")


def update_step(plan: rel.FlowPlan, ctx: UndoContext, mgr: Host, svc: Service, ref: str,
                image_id: str, active: int, gate: float | None, swarm: Swarm,
                bus: EventBus) -> Step:
    order, back, why = sf.update_order(svc, active)
    window = sf.monitor(svc, gate)
    argv = sc.update_service(svc.name, ref, order=order, rollback_order=back, monitor=window,
                             constraints_rm=svc.own_constraints,
                             constraint_add=sc.image_constraint(image_id))
    plan.notes.append(f"{svc.name}: {order} ({why}); monitor {window:g}s; rollback {back}")

    async def run() -> str:
        now = sf.parse_services((await mgr.run(sc.inspect_services([svc.name]),
                                               timeout=60)).stdout).get(svc.name)
        if now is None or now.image != svc.image:
            raise PreconditionFailed(f"{svc.name} changed while the release was being "
                                     f"planned (now {now.image if now else 'gone'})",
                                     host=mgr.label, hint="run it again")
        await update(mgr, argv)
        done = await wait_update(mgr, svc.name, now.update_started, swarm.timeout)
        if done.update_state in sf.DONE:
            return await landed(mgr, done, ref)
        what = ("rolled back by Swarm" if done.update_state in sf.ROLLED_BACK
                else f"left {done.update_state} by Swarm")
        tasks = await mgr.run(sc.service_tasks(svc.name), timeout=60)
        bad = [f"{t.node}: {t.current} {t.error}".strip()
               for t in sf.parse_tasks(tasks.stdout) if t.image == ref and t.error][:5]
        raise FlowFailed(f"{svc.name} was {what}: {done.update_message}",
                         host=mgr.label, evidence="\n".join(bad),
                         hint=f"docker service ps {svc.name} on {mgr.label}")

    data = {"kind": "swarm-update", "host": mgr.label, "service": svc.name, "ref": ref,
            "timeout": swarm.timeout}
    return Step(f"update {svc.name} to {ref} on {mgr.label}", run, bound(ctx, data),
                undo_data=data, host=mgr.label, params={"order": order, "monitor": window},
                commands=[f"{mgr.label}: {short_command(argv)}"], undo_if_failed=True)


async def landed(mgr: Host, done: Service, ref: str) -> str:
    """Swarm says completed: no task of another image may still be meant to run."""
    tasks = sf.parse_tasks((await mgr.run(sc.service_tasks(done.name), timeout=60)).stdout)
    running = [t for t in tasks if t.desired == "running" and t.state == "running"]
    old = [f"{t.node}: {t.image}" for t in running if t.image != ref]
    if old:
        raise FlowFailed(f"{done.name}: Swarm says the update completed but tasks of another "
                         f"image still run ({'; '.join(old)})", host=mgr.label,
                         hint=f"docker service ps {done.name} on {mgr.label}")
    said = f"{done.name} runs {ref} ({done.update_message or 'completed'})"
    if done.replicas is not None and len(running) > done.replicas:
        # Seen after a drain during a start-first update: two tasks of one slot.
        said += (f"; {len(running)} tasks run for {done.replicas} replica(s) "
                 f"(on {', '.join(sorted(t.node for t in running))})")
    return said


OUT_OF_SEQUENCE = "update out of sequence"


async def update(mgr: Host, argv: list[str], tries: int = 3) -> None:
    """The update command; Swarm refuses one that raced another change of the service
    (its own reconciling after a node change): read afresh and ask again, a few times."""
    for attempt in range(tries):
        res = await mgr.run(argv, timeout=120)
        if res.ok:
            return
        if OUT_OF_SEQUENCE not in res.stderr or attempt == tries - 1:
            raise CommandFailed(res, f"docker service update on {mgr.label} failed")
        await asyncio.sleep(1)


async def wait_update(mgr: Host, name: str, before: str | None, timeout: float) -> Service:
    """Until Swarm says how the update ended: UpdateStatus of an update newer than `before`
    in a final state. The CLI's exit code cannot say it (it is 0 after a rollback)."""
    deadline = time.monotonic() + timeout
    while True:
        res = await mgr.run(sc.inspect_services([name]), timeout=60)
        now = sf.parse_services(res.stdout).get(name)
        if now is None:
            raise FlowFailed(f"{name} is gone from the Swarm", host=mgr.label)
        if now.update_state in sf.FINAL and now.update_started != before:
            return now
        if time.monotonic() > deadline:
            raise FlowFailed(f"{name}: the update is still {now.update_state} after "
                             f"{timeout:g}s ({now.update_message})", host=mgr.label,
                             hint=f"environments.*.swarm.timeout; docker service ps {name}")
        await asyncio.sleep(POLL)


@undoer("swarm-update")
async def _undo_update(ctx: UndoContext, d: dict[str, Any]) -> None:
    """Back to the previous spec when the service still names the release's image; one Swarm
    already rolled back needs nothing (safe to run twice)."""
    mgr = ctx.host(d["host"])
    res = await mgr.run(sc.inspect_services([d["service"]]), timeout=60)
    now = sf.parse_services(res.stdout).get(d["service"])
    if now is None or now.image != d["ref"]:
        return
    await mgr.run(sc.rollback_service(d["service"]), timeout=120, check=True)
    done = await wait_update(mgr, d["service"], now.update_started, d.get("timeout", 900))
    if done.update_state not in sf.ROLLED_BACK | sf.DONE:
        raise FlowFailed(f"rolling {d['service']} back ended {done.update_state}: "
                         f"{done.update_message}", host=mgr.label)
