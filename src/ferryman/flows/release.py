"""`ferryman release FROM TO`: the images running on FROM, running on TO, or nothing changed.

Plan (reads only): what FROM runs, what TO runs, how each TO service was started. Refuse bad
input before touching anything. Then steps, each with its undo: lock TO, transfer the images
TO lacks, recreate each service the way it runs there, gate on health, apply TO's guards.
Any failure undoes in reverse; the release is recorded on TO either way.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..docker import commands as dc
from ..docker import images as di
from ..docker.compose import file_version
from ..docker.inspect import ContainerFacts, parse_containers
from ..docker.runspec import run_spec
from ..errors import BadInput, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool, Placement, by_host
from ..state import LockOwner, acquire_lock, release_id
from ..steps import Outcome, Step, run_steps
from ..transport import Host
from . import lock
from . import recreate as rc
from .check import compose_flavour
from .guards import guard_steps
from .history import prune_kept, record_release
from .transfer import ImageToSend, StreamTransfer, Transfer


@dataclass
class Source:
    service: str
    host: str
    facts: ContainerFacts
    image: dict[str, Any]  # docker image inspect of the running image, on FROM

    @property
    def ref(self) -> str:
        ref = self.facts.image_ref
        # A container started from a bare id has no name to carry: send it by id.
        return self.facts.image_id if ref.startswith("sha256:") else ref


@dataclass
class Plan:
    rid: str
    src_env: str
    dst_env: str
    sources: dict[str, Source]
    steps: list[Step] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)  # for the release record
    lock_host: str = ""
    lock_owner: LockOwner | None = None
    locked: bool = False
    notes: list[str] = field(default_factory=list)
    kind: str = "release"
    record_extra: dict[str, Any] = field(default_factory=dict)


async def _inspect_group(pool: HostPool, env: str, host: str,
                         places: list[Placement]) -> dict[str, ContainerFacts]:
    res = await pool.host(env, host).run(
        ["docker", "inspect", "--type", "container", *[p.container for p in places]], timeout=60)
    return parse_containers(res.stdout)


async def read_sources(pool: HostPool, env: str, services: list[str]) -> dict[str, Source]:
    places = pool.placements(env, services or None)
    groups = list(by_host(places))
    found = await asyncio.gather(*(_inspect_group(pool, e, h, ps) for (e, h), ps in groups))
    per_host = {host: facts for ((_, host), _), facts in zip(groups, found, strict=True)}
    sources: dict[str, Source] = {}
    for name in dict.fromkeys(p.service for p in places):
        mine = [(p.host, per_host[p.host].get(p.container)) for p in places if p.service == name]
        running = [(h, f) for h, f in mine if f is not None and f.running]
        if not running:
            states = ", ".join(f"{h}: {f.status if f else 'absent'}" for h, f in mine)
            raise BadInput(f"{name} is not running on {env} ({states}); nothing to release",
                           hint=f"ferryman status {env}")
        ids = {f.image_id for _, f in running}
        if len(ids) > 1:
            raise BadInput(f"{name} runs different images on the hosts of {env}: "
                           + ", ".join(f"{h}: {f.image_ref}" for h, f in running))
        host, facts = running[0]
        sources[name] = Source(name, host, facts, {})
    # The ref must still name the image the container runs, or TO would get another image.
    for src in sources.values():
        h = pool.host(env, src.host)
        res = await h.run(di.inspect_images([src.facts.image_id]), timeout=60)
        src.image = (parse_json_list(res.stdout) or [{}])[0]
        if src.ref != src.facts.image_id:
            now = await h.run(di.image_id(src.ref), timeout=30)
            if now.stdout.strip() != src.facts.image_id:
                raise BadInput(
                    f"on {src.host}, {src.ref} now names {now.stdout.strip() or 'nothing'} but "
                    f"{src.service} runs {src.facts.image_id}",
                    hint=f"recreate {src.service} on {env} from the current tag, or re-tag it")
    return sources


def parse_json_list(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def check_policy(cfg: Config, dst_env: str, sources: dict[str, Source]) -> None:
    policy = cfg.environments[dst_env].policy
    bad = [f"{s.service}: {s.ref}" for s in sources.values()
           if not policy.allows(s.facts.image_tag if s.ref != s.facts.image_id else "")]
    if bad:
        raise BadInput(f"{dst_env} takes only tags matching {', '.join(policy.allowed_tags)}; "
                       f"refused: {'; '.join(bad)}", hint="tag the image as a release (v1.2.3) "
                       "on the source and recreate the service from that tag")


def _rewriter(src_addr: str, dst_addr: str):  # type: ignore[no-untyped-def]
    def rewrite(value: str) -> str:
        return value.replace(src_addr, dst_addr) if src_addr and src_addr != dst_addr else value
    return rewrite


async def plan_release(cfg: Config, pool: HostPool, src_env: str, dst_env: str,
                       services: list[str], bus: EventBus,
                       transfer: Transfer | None = None) -> Plan:
    for env in (src_env, dst_env):
        pool.env(env)
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    sources = await read_sources(pool, src_env, services)
    check_policy(cfg, dst_env, sources)
    plan = Plan(release_id(), src_env, dst_env, sources)
    transfer = transfer or StreamTransfer()
    dst = pool.env(dst_env)
    plan.lock_host = dst.hosts[0].label
    targets = pool.placements(dst_env, list(sources))
    groups = list(by_host(targets))
    found = await asyncio.gather(*(_inspect_group(pool, e, h, ps) for (e, h), ps in groups))
    current = {host: facts for ((_, host), _), facts in zip(groups, found, strict=True)}

    plan.steps.append(lock_step(cfg, pool, dst_env, plan, current))
    # 1) images each TO host lacks
    for (_, host_label), places in groups:
        plan.steps.extend(await _transfer_steps(pool, plan, host_label, places, transfer, bus))
    # 2) each service, the way it runs there
    for p in targets:
        src = sources[p.service]
        facts = current[p.host].get(p.container)
        t = rc.Target(p.service, p.host, pool.host(dst_env, p.host), p.container,
                      cfg.services[p.service].health, facts, env=dst_env)
        plan.steps.extend(await _service_steps(cfg, pool, plan, t, src, bus))
    # 3) the environment's own config
    plan.steps.extend(await guard_steps(cfg, pool, dst_env, plan.rid))
    return plan


def lock_step(cfg: Config, pool: HostPool, env: str, plan: Plan,
               seen: dict[str, dict[str, ContainerFacts]]) -> Step:
    host = pool.host(env, plan.lock_host)
    owner = LockOwner.mine(f"{plan.kind} {plan.src_env} {plan.dst_env} ({plan.rid})")
    plan.lock_owner = owner
    argv = acquire_lock(cfg.project, owner)

    async def run() -> str:
        await lock.take(host, cfg.project, env, owner)
        plan.locked = True
        # What was read while planning must still hold now that nobody else can change it.
        for label, facts in seen.items():
            names = [f.name for f in facts.values()]
            if not names:
                continue
            now = await pool.host(env, label).run(
                ["docker", "inspect", "--type", "container", *names], timeout=60)
            fresh = parse_containers(now.stdout)
            moved = [n for n, f in facts.items() if fresh.get(n) is None
                     or fresh[n].id != f.id]
            if moved:
                raise PreconditionFailed(f"{', '.join(moved)} on {label} changed while the "
                                         "release was being planned", hint="run it again")
        return f"locked by {owner.owner}"

    return Step(f"lock {env} on {plan.lock_host}", run, params={"owner": owner.owner,
                "command": owner.command}, host=None, commands=[shlex.join(argv[:3]) + " ..."])


async def _transfer_steps(pool: HostPool, plan: Plan, host_label: str, places: list[Placement],
                          transfer: Transfer, bus: EventBus) -> list[Step]:
    dst = pool.host(plan.dst_env, host_label)
    wanted = {plan.sources[p.service].ref: plan.sources[p.service] for p in places}
    res = await dst.run(di.inspect_images(list(wanted)), timeout=60)
    had = {tag: img.get("Id", "") for img in parse_json_list(res.stdout)
           for tag in img.get("RepoTags") or []}
    had_ids = {img.get("Id", "") for img in parse_json_list(res.stdout)}
    need: dict[str, list[ImageToSend]] = {}
    for ref, src in wanted.items():
        if had.get(ref) == src.facts.image_id or (ref == src.facts.image_id and ref in had_ids):
            plan.notes.append(f"{host_label} already has {ref}")
            continue
        img = ImageToSend(ref, src.facts.image_id, int(src.image.get("Size") or 0))
        need.setdefault(src.host, []).append(img)
    steps = []
    for src_host, images in need.items():
        src = pool.host(plan.src_env, src_host)
        before = {i.ref: had.get(i.ref) for i in images}

        async def run(src: Host = src, images: list[ImageToSend] = images) -> str:
            sent = await transfer.send(src, dst, images, bus)
            return (f"{len(images)} image(s), {sent.wire_bytes} bytes on the wire "
                    f"({sent.compression}), {sent.seconds:.1f}s")

        async def undo(before: dict[str, str | None] = before) -> None:
            # Put each tag back where it pointed; a tag TO did not have goes away again.
            for ref, old in before.items():
                if old:
                    await dst.run(di.tag(old, ref), timeout=60, check=True)
                elif not ref.startswith("sha256:"):
                    await dst.run(di.untag(ref), timeout=60)

        cmds = [f"{src_host}: " + shlex.join(di.save([i.ref for i in images], "zstd")),
                f"{host_label}: " + shlex.join(di.load("zstd")),
                "(zstd where both ends have it, else gzip, else none)"]
        steps.append(Step(
            f"transfer images {src_host} -> {host_label}", run, undo,
            params={"images": {i.ref: i.image_id for i in images},
                    "bytes": sum(i.size for i in images)},
            host=host_label, commands=cmds, undo_if_failed=True))
    return steps


async def _service_steps(cfg: Config, pool: HostPool, plan: Plan, t: rc.Target, src: Source,
                         bus: EventBus) -> list[Step]:
    entry: dict[str, Any] = {
        "service": t.service, "host": t.host_label, "container": t.container,
        "new": {"ref": src.ref, "id": src.facts.image_id},
    }
    plan.services.append(entry)
    facts = t.facts
    if facts is not None and facts.image_id == src.facts.image_id and facts.running:
        entry.update(mode="unchanged", old={"ref": facts.image_ref, "id": facts.image_id})
        plan.notes.append(f"{t.service} on {t.host_label} already runs {src.ref}")
        return []
    if facts is None:
        entry.update(mode="bootstrap", old=None)
        src_addr = cfg.environments[plan.src_env].own_address
        dst_addr = cfg.environments[plan.dst_env].own_address
        spec = run_spec(src.facts.raw, src.image, src.ref, name=t.container,
                        rewrite=_rewriter(src_addr, dst_addr))
        for note in spec.carried:
            plan.notes.append(f"bootstrap {t.service} on {t.host_label}: {note}")
        return [rc.start_steps(t, spec, "create"), rc.health_step(t)]
    entry["old"] = {"ref": facts.image_ref, "id": facts.image_id}
    if facts.compose is not None and facts.compose.complete:
        exist = dc.parse_files_exist((await t.host.run(
            dc.files_exist(facts.compose.config_files), timeout=30)).stdout)
        missing = [f for f in facts.compose.config_files if not exist.get(f)]
        flavour = await compose_flavour(t.host)
        if not missing and flavour:
            head = await t.host.run(["cat", facts.compose.config_files[0]], timeout=30)
            entry["mode"] = "compose"
            return [rc.compose_step(t, cfg.project, src.ref, file_version(head.stdout),
                                    flavour == "v2"), rc.health_step(t)]
        why = (f"its compose files are missing ({', '.join(missing)})" if missing
               else "no docker compose on the host")
        bus.warn(f"{t.service} on {t.host_label} was started by compose but {why}: "
                 "recreating it from docker inspect instead")
    entry["mode"] = "run"
    img = await t.host.run(di.inspect_images([facts.image_id]), timeout=60)
    old_image = (parse_json_list(img.stdout) or [None])[0]
    kept = rc.kept_name(t.container, plan.rid)
    entry["kept"] = kept
    entry["restart_policy"] = rc.restart_policy(facts)
    spec = run_spec(facts.raw, old_image, src.ref, name=t.container)
    return [rc.retire_steps(t, kept), rc.start_steps(t, spec, "start new"), rc.health_step(t)]


async def execute(cfg: Config, pool: HostPool, plan: Plan, bus: EventBus,
                  dry_run: bool = False) -> Outcome:
    for note in plan.notes:
        bus.info(note)
    params = {"from": plan.src_env, "to": plan.dst_env, plan.kind: plan.rid,
              "services": {e["service"]: e["new"]["ref"] for e in plan.services}}
    if dry_run:
        return await run_steps(bus, plan.steps, params, dry_run=True)
    try:
        outcome = await run_steps(bus, plan.steps, params)
        if plan.locked:
            await record_release(cfg, pool, plan, outcome, bus, plan.kind, plan.record_extra)
            if outcome.ok:
                await prune_kept(cfg, pool, plan.dst_env, plan.services, bus)
    finally:
        if plan.locked and plan.lock_owner is not None:
            await lock.give_back(pool.host(plan.dst_env, plan.lock_host), cfg.project,
                                 plan.lock_owner)
    return outcome
