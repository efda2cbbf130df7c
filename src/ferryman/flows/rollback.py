"""`ferryman rollback ENV`: back to what ran before a release, through the same health gate.

Run mode puts the container the release set aside back under its name; compose mode pins the
previous image again; a bootstrapped service is stopped and set aside (there was nothing
before it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..data import archive as ar
from ..docker import commands as dc
from ..docker.compose import compose_flavour, file_version
from ..docker.inspect import ContainerFacts, parse_containers
from ..errors import BadInput, PreconditionFailed
from ..hosts import HostPool
from ..record import History, Image, Record, ServiceChange
from ..state import release_id
from ..steps import Step
from ..undo import UndoContext
from . import bluegreen as bg
from . import durable
from . import recreate as rc
from .data.apply import apply_steps, plan_target
from .data.plan import DataState
from .data.site import located_site
from .data.store import read_manifest
from .history import read_history
from .lock import env_lock
from .release import FlowPlan


@dataclass
class RollbackPlan(FlowPlan):
    """Back to what ran before release `target`, on the environment it released to."""

    target: Record | None = None
    restores: str | None = None  # the backup taken before the release's hooks, restored

    def journal_context(self) -> dict:
        return {**super().journal_context(), "rolls_back": self.target.id if self.target
                else None}


def pick(history: History, env: str, wanted: str | None) -> Record:
    """The release to undo: the one named, else the newest successful one not yet undone."""
    records = history.records
    done = {r.rolls_back for r in records if r.kind == "rollback" and r.result == "ok"}
    # A release that found everything in place changed nothing: nothing to go back from.
    releases = [r for r in records if r.kind == "release" and r.to == env and r.result == "ok"
                and any(s.mode != "unchanged" for s in r.services)]
    if wanted:
        match = [r for r in releases if r.id == wanted]
        if not match:
            known = ", ".join(r.id for r in releases[-5:]) or "none"
            unread = (f"; {len(history.unreadable)} record(s) could not be read"
                      if history.unreadable else "")
            raise BadInput(f"no successful release {wanted} on {env} (latest: {known}){unread}",
                           hint=f"ferryman history {env}")
        return match[-1]
    for record in reversed(releases):
        if record.id not in done:
            return record
    raise BadInput(f"no release on {env} to roll back", hint=f"ferryman history {env}")


async def plan_rollback(cfg: Config, pool: HostPool, env: str,
                        wanted: str | None) -> RollbackPlan:
    history = await read_history(cfg, pool, env)
    target = pick(history, env, wanted)
    rid = release_id()
    plan = RollbackPlan(rid, env, env_lock(cfg, pool, env, f"rollback {env} ({rid})"),
                        kind="rollback", target=target)
    entries = [e for e in target.services if e.mode != "unchanged"]
    seen: dict[str, dict[str, ContainerFacts]] = {}
    for e in entries:
        host = pool.host(env, e.host)
        if e.host not in seen:
            names = [x.container for x in entries if x.host == e.host]
            names += [x.kept for x in entries if x.host == e.host and x.kept]
            res = await host.run(dc.inspect_containers(names), timeout=60)
            seen[e.host] = parse_containers(res.stdout)
    plan.seen = {h: {n: f for n, f in facts.items() if ".ferryman-" not in n}
                 for h, facts in seen.items()}
    ctx = UndoContext(cfg, pool, env)
    # Data first, as the release left it before its hooks; then the previous containers.
    plan.steps.extend(await _restore_steps(cfg, pool, plan, target))
    for e in entries:
        svc = e.service
        if svc not in cfg.services:
            raise BadInput(f"release {target.id} names service {svc}, which ferryman.yml "
                           "no longer has")
        facts = seen[e.host].get(e.container)
        t = rc.Target(svc, e.host, pool.host(env, e.host), e.container,
                      cfg.services[svc].health, facts, ctx)
        entry = ServiceChange(
            service=svc, host=e.host, container=e.container, mode=e.mode, new=e.old,
            old=Image(ref=facts.image_ref, id=facts.image_id) if facts else None)
        plan.changes.append(entry)
        if e.mode == "run":
            kept = e.kept or ""
            if kept not in seen[e.host]:
                raise PreconditionFailed(
                    f"the previous {svc} container ({kept}) is gone from {e.host}",
                    host=e.host,
                    hint="it was pruned or removed; release the older version again instead")
            policy = e.restart_policy or "no"
            proxy = cfg.services[svc].proxy
            if proxy is not None and facts is not None:
                plan.steps += await _switch_back(cfg, plan, t, entry, kept,
                                                 seen[e.host][kept], policy)
                continue
            if facts is not None:
                entry.kept = rc.kept_name(t.container, plan.rid)
                plan.steps.append(rc.retire_steps(t, entry.kept))
            plan.steps += [rc.revive_step(t, kept, policy), rc.health_step(t)]
        elif e.mode == "compose":
            if facts is None or facts.compose is None or e.old is None:
                raise PreconditionFailed(f"{svc} on {e.host} no longer runs under compose",
                                         host=e.host)
            previous = await rc.resolve_previous(t.host, e.old.ref, e.old.id)
            flavour = await compose_flavour(t.host)
            head = await t.host.run(["cat", facts.compose.config_files[0]], timeout=30)
            if flavour is None or not head.ok:
                raise PreconditionFailed(f"cannot run compose for {svc} on {e.host}: "
                                         + ("no docker compose" if flavour is None
                                            else head.stderr.strip()), host=e.host)
            plan.steps += [rc.compose_step(t, cfg.project, previous, file_version(head.stdout),
                                           flavour == "v2", cfg.values(env, svc)),
                           rc.health_step(t)]
            for kept in [p for p in target.persisted
                         if p.get("host") == e.host and p.get("service") == svc]:
                edit = await durable.rollback_edit(t.host, facts.compose, cfg.project,
                                                   previous, kept)
                if isinstance(edit, str):
                    plan.warnings.append(f"{svc} on {e.host}: {edit}")
                elif edit.changes:
                    plan.steps.append(durable.persist_step(ctx, t.host, e.host, svc, edit,
                                                           plan.rid, "restore"))
        elif e.mode == "bootstrap" and facts is not None:
            entry.kept = rc.kept_name(t.container, plan.rid)
            plan.steps.append(rc.retire_steps(t, entry.kept, gate_on_undo=True))
    return plan


async def _switch_back(cfg: Config, plan: RollbackPlan, t: rc.Target, entry: ServiceChange,
                       kept: str, kept_facts: ContainerFacts, policy: str) -> list[Step]:
    """Blue-green backwards: the kept container starts beside the current one on its own
    port, nginx is switched to it, the current one drains and is kept in turn."""
    svc = cfg.services[t.service]
    assert svc.proxy is not None and t.facts is not None
    port = bg.published_port(kept_facts, svc.proxy.port)
    if port is None:
        raise PreconditionFailed(f"the previous {t.service} container ({kept}) on {t.host_label}"
                                 f" publishes no port for {svc.proxy.port}", host=t.host_label)
    sw = await bg.read_switch(t.host, t.host_label, t.service, t.container, svc.proxy,
                              svc.upstream, t.facts, new_port=port)
    entry.kept = rc.kept_name(t.container, plan.rid)
    entry.restart_policy = rc.restart_policy(t.facts)
    entry.port = port
    start = bg.start_kept_step(t.ctx, sw, kept)
    return bg.release_steps(t, sw, start, kept, entry.kept, plan.rid, policy)


async def _restore_steps(cfg: Config, pool: HostPool, plan: RollbackPlan,
                         target: Record) -> list[Step]:
    """A release whose hooks changed data took a backup first: restoring it is part of going
    back. Without one, the data stays as the hooks left it, and the operator is told so."""
    ran = [h for h in target.hooks if h.get("when") == "before_switch"
           or h.get("changes_data")]
    if target.backup is None:
        if ran:
            names = ", ".join(f"{h.get('service')}.{h.get('when')}" for h in ran)
            plan.notes.append(f"release {target.id} ran {names} and took no backup: the data "
                              "stays as those hooks left it")
        return []
    if cfg.data is None:
        raise BadInput(f"release {target.id} took backup {target.backup}, but ferryman.yml "
                       "has no data section to restore it with", hint="restore it by hand: "
                       f"ferryman restore {plan.env} {target.backup}")
    s = await located_site(cfg, pool, plan.env)
    try:
        m = await read_manifest(s, target.backup)
    except BadInput as exc:
        raise PreconditionFailed(f"backup {target.backup}, taken before release {target.id}"
                                 f", is gone from {s.label}", host=s.label,
                                 hint="roll back without it is not offered: restore another "
                                      f"backup (ferryman backups {plan.env})") from exc
    safety, live = await plan_target(s, m, ar.backup_id("s"))
    plan.restores = m.id
    why = ", ".join(f"{h.get('service')}.{h.get('when')}" for h in ran if h.get("changes_data"))
    plan.notes.append(f"release {target.id} changed data ({why}): backup {m.id} is restored "
                      f"first (a safety backup {safety.bid} is taken before)")
    return apply_steps(s, m, safety, live, plan.rid, DataState(applied=m))
