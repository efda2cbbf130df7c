"""`ferryman release FROM TO`: the images running on FROM, running on TO, or nothing changed.

Plan (reads only): what FROM runs, what TO runs, how each TO service was started. Refuse bad
input before touching anything. Then steps, each with its undo: lock TO, transfer the images
TO lacks, recreate each service the way it runs there, gate on health, apply TO's guards.
Any failure undoes in reverse; the release is recorded on TO either way.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..docker import commands as dc
from ..docker import hooks as dh
from ..docker import images as di
from ..docker.compose import compose_flavour, file_version
from ..docker.inspect import ComposeInfo, ContainerFacts, parse_containers, short_id
from ..docker.runspec import run_spec
from ..errors import BadInput, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool, Placement, by_host
from ..journal import Journal
from ..locking import EnvLock
from ..record import Image, ServiceChange
from ..state import release_id
from ..steps import Action, Outcome, Step, run_steps
from ..transport.base import short_command
from ..undo import UndoContext, bound, undoer
from . import bluegreen as bg
from . import durable
from . import hooks as hk
from . import policy as pol
from . import recreate as rc
from . import watch as wt
from .data.plan import DataState
from .envvalues import env_of_argv, env_of_container, foreign, lacking
from .guards import guard_steps
from .history import prune_kept, read_history, record_release
from .lock import env_lock
from .transfer import ImageToSend, LayerTransfer, Prepared, Transfer


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
class FlowPlan:
    """What release and rollback share: the steps, the changes to record, the lock."""

    rid: str
    env: str  # the environment that changes
    lock: EnvLock
    steps: list[Step] = field(default_factory=list)
    changes: list[ServiceChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Re-reads, under the lock, what planning saw: nobody may have changed it since.
    seen: dict[str, dict[str, ContainerFacts]] = field(default_factory=dict)
    kind: str = "release"
    record_extra: dict[str, Any] = field(default_factory=dict)  # more fields of the record

    @property
    def src_env(self) -> str:
        return self.env

    def journal_context(self) -> dict[str, Any]:
        return {"changes": [c.model_dump() for c in self.changes]}


@dataclass
class Plan(FlowPlan):
    """A release: FROM's images onto `env` (TO)."""

    source_env: str = ""
    sources: dict[str, Source] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # --tag: service -> its ref on TO
    tag: str | None = None
    canary: bg.Canary | None = None  # --canary: proxied services switch in weighted steps

    @property
    def src_env(self) -> str:
        return self.source_env

    def new_ref(self, service: str) -> str:
        """The ref TO's containers of `service` are created from (--tag: the tagged one)."""
        return self.refs.get(service) or self.sources[service].ref

    @property
    def dst_env(self) -> str:
        return self.env

    def journal_context(self) -> dict[str, Any]:
        return {**super().journal_context(), "from": self.source_env, "to": self.env,
                "services": list(self.sources),
                "images": {n: s.facts.image_id for n, s in self.sources.items()},
                **({"tag": self.tag} if self.tag else {})}


async def _inspect_group(pool: HostPool, env: str, host: str,
                         places: list[Placement]) -> dict[str, ContainerFacts]:
    res = await pool.host(env, host).run(
        dc.inspect_containers([p.container for p in places]), timeout=60)
    return parse_containers(res.stdout)


async def _read_containers(pool: HostPool, env: str, services: list[str] | None) -> tuple[
        list[Placement], list[tuple[tuple[str, str], list[Placement]]],
        list[dict[str, ContainerFacts]]]:
    """Where each service runs in `env`, grouped by host, and each host's containers read."""
    await pool.resolve(env)
    targets = pool.placements(env, services)
    groups = list(by_host(targets))
    found = await asyncio.gather(*(_inspect_group(pool, e, h, ps) for (e, h), ps in groups))
    return targets, groups, list(found)


async def read_sources(pool: HostPool, env: str, services: list[str]) -> dict[str, Source]:
    places, groups, found = await _read_containers(pool, env, services or None)
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
            # The same tag can name another build on each host: the ids tell them apart.
            raise BadInput(f"{name} runs different images on the hosts of {env}: "
                           + ", ".join(f"{h}: {f.image_ref} ({short_id(f.image_id)})"
                                       for h, f in running),
                           hint=f"run one image on every host of {env}, then release again")
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
                       transfer: Transfer | None = None, *, rid: str | None = None,
                       lock: EnvLock | None = None, tag: str | None = None,
                       watch: float | None = None, canary: bg.Canary | None = None) -> Plan:
    """`rid` and a held `lock` are given when a release is resumed from its journal.
    `tag`: the images get this tag on TO (their repository, this tag), and TO's policy is
    met by it. `watch`: the watch window in seconds (None: TO's `watch`; 0: none)."""
    for env in (src_env, dst_env):
        pool.env(env)
    if src_env == dst_env:
        raise BadInput(f"FROM and TO are both '{src_env}'")
    if tag is not None:
        pol.check_tag(tag)
    sources = await read_sources(pool, src_env, services)
    refs: dict[str, str] = {}
    if tag is not None:
        refs = pol.refs_for_tag(sources, {n: s.facts.image_id for n, s in sources.items()},
                                tag)
        pol.check_tags(cfg, dst_env, {n: tag for n in sources})
    else:
        check_policy(cfg, dst_env, sources)
    if cfg.environments[dst_env].policy.accepts_from is not None:
        pol.check_accepts(cfg, src_env, dst_env,
                          {n: (s.ref, s.facts.image_id) for n, s in sources.items()},
                          await read_history(cfg, pool, src_env), datetime.now(UTC))
    rid = rid or release_id()
    lock = lock or env_lock(cfg, pool, dst_env, f"release {src_env} {dst_env} ({rid})")
    plan = Plan(rid, dst_env, lock, source_env=src_env, sources=sources, refs=refs, tag=tag,
                canary=canary)
    if canary is not None:
        if not any(cfg.services[s].proxy for s in sources):
            raise BadInput("--canary needs a service with `proxy:` among those released "
                           f"({', '.join(sources)})")
        plan.record_extra["canary"] = list(canary.weights)
    if tag is not None:
        plan.record_extra["tag"] = tag
    transfer = transfer or LayerTransfer()
    targets, groups, found = await _read_containers(pool, dst_env, list(sources))
    plan.seen = {host: facts for ((_, host), _), facts in zip(groups, found, strict=True)}
    current = plan.seen
    ctx = UndoContext(cfg, pool, dst_env)
    # 1) images each TO host lacks, read once on FROM for the hosts that take the same stream
    # (every TO host planned at once: each plan is a few round trips of its own; its notes
    # are kept in host order)
    planned = await asyncio.gather(*(_wanted(pool, plan, host_label, places, transfer)
                                     for (_, host_label), places in groups))
    wanted = [w for ws, _ in planned for w in ws]
    plan.notes.extend(n for _, notes in planned for n in notes)
    plan.steps.extend(_transfer_steps(wanted, transfer, bus, ctx))
    # 1a) --tag: the release's own name for the images, on each TO host
    for (_, host_label), places in groups:
        plan.steps.extend(await _tag_steps(pool, plan, host_label, places, ctx))
    # 2) each service, the way it runs there
    switch: list[Step] = []
    for p in targets:
        src = sources[p.service]
        facts = current[p.host].get(p.container)
        t = rc.Target(p.service, p.host, pool.host(dst_env, p.host), p.container,
                      cfg.services[p.service].health, facts, ctx)
        switch.extend(await _service_steps(cfg, pool, plan, t, src, bus))
    # 1b) before the switch: the backup a data-changing hook asks for, then the hooks
    changing = {c.service for c in plan.changes if c.mode != "unchanged"}
    before = await _hook_runs(cfg, pool, plan, targets, "before_switch", changing)
    after = await _hook_runs(cfg, pool, plan, targets, "after_switch", changing)
    runs = [*before, *after]
    if runs:
        plan.record_extra["hooks"] = hk.describe(runs)
    why = [f"{r.service}.{r.when}" for r in runs if r.hook.changes_data]
    if why:
        steps, bid = await hk.backup_steps(cfg, pool, dst_env, plan.rid, why, DataState())
        plan.steps.extend(steps)
        plan.record_extra["backup"] = bid
        plan.notes.append(f"{', '.join(why)} change(s) data: backup {bid} of {dst_env} is "
                          "taken first and kept; rollback restores it")
    plan.steps.extend(hk.hook_step(r, bus, ctx) for r in before)
    plan.steps.extend(switch)
    # 3) the environment's own config
    plan.steps.extend(await guard_steps(cfg, pool, dst_env, plan.rid))
    # 4) after the health gates
    plan.steps.extend(hk.hook_step(r, bus, ctx) for r in after)
    # 5) the watch window: a failure in it undoes the release like any failed step
    window = cfg.environments[dst_env].watch if watch is None else watch
    watched = [wt.Watched(c.service, c.host, pool.host(dst_env, c.host), c.container,
                          bg.side_health(cfg.services[c.service].health, c.port)
                          if c.port else cfg.services[c.service].health)
               for c in plan.changes if c.mode != "unchanged"]
    if window > 0 and watched:
        result: dict[str, Any] = {"window": window, "result": "not reached"}
        plan.record_extra["watch"] = result
        plan.steps.append(wt.watch_step(dst_env, watched, window, bus, result))
    return plan


async def _tag_steps(pool: HostPool, plan: Plan, host_label: str, places: list[Placement],
                     ctx: UndoContext) -> list[Step]:
    """Tags each image on TO with the ref --tag gives it. A tag that already names another
    image there is refused: a release name means one image."""
    want = {plan.new_ref(p.service): plan.sources[p.service] for p in places
            if plan.new_ref(p.service) != plan.sources[p.service].ref}
    if not want:
        return []
    host = pool.host(plan.dst_env, host_label)
    before: dict[str, str | None] = {}
    argvs = []
    for ref, src in want.items():
        now = await host.run(di.image_id(ref), timeout=30)
        had = now.stdout.strip() if now.ok else ""
        if had == src.facts.image_id:
            plan.notes.append(f"{ref} already names {src.ref}'s image on {host_label}")
            continue
        if had:
            raise BadInput(f"--tag: {ref} already names another image on {host_label} "
                           f"({short_id(had)}), not {src.ref} ({short_id(src.facts.image_id)})",
                           hint="a release tag names one image: pick a new tag")
        before[ref] = None
        argvs.append(di.tag(src.facts.image_id, ref))
    if not argvs:
        return []

    async def run() -> str:
        for argv in argvs:
            await host.run(argv, timeout=60, check=True)
        return ", ".join(before)

    data = {"kind": "retag", "host": host_label, "before": before}
    return [Step(f"tag images on {host_label}", run, bound(ctx, data), undo_data=data,
                 params={"tags": list(before)}, host=host_label,
                 commands=[short_command(a) for a in argvs], undo_if_failed=True)]


async def _hook_runs(cfg: Config, pool: HostPool, plan: Plan, targets: list[Placement],
                     when: str, changing: set[str]) -> list[hk.HookRun]:
    """Each hook once, on the first host of TO that runs its service (the first host it is
    placed on, for a bootstrap), as that container runs; services left unchanged run none."""
    runs = []
    for service, hook in hk.hooked(cfg, list(plan.sources), when).items():
        if service not in changing:
            continue
        places = [p for p in targets if p.service == service]
        place = next((p for p in places if plan.seen[p.host].get(p.container) is not None),
                     places[0])
        facts = plan.seen[place.host].get(place.container)
        src = plan.sources[service]
        host = pool.host(plan.dst_env, place.host)
        rewrite = None
        if facts is not None:
            img = await host.run(di.inspect_images([facts.image_id]), timeout=60)
            container, old_image = facts.raw, (parse_json_list(img.stdout) or [None])[0]
        else:  # bootstrap: as the container will be started, from FROM's
            container, old_image = src.facts.raw, src.image
            rewrite = _rewriter(cfg.environments[plan.src_env].own_address,
                                cfg.environments[plan.dst_env].own_address)
        name = dh.hook_name(place.container, plan.rid, when.split("_")[0])
        argv, notes = dh.hook_run(container, old_image, plan.new_ref(service), hook.run,
                                  name=name, rewrite=rewrite,
                                  env=cfg.values(plan.dst_env, service))
        plan.notes.extend(f"{when} hook of {service}: {n}" for n in notes)
        runs.append(hk.HookRun(service, when, place.host, host, hook, argv, name))
    return runs


def verify_seen(pool: HostPool, plan: FlowPlan) -> Action:
    """What was read while planning must still hold once nobody else can change it."""
    async def verify() -> None:
        for label, facts in plan.seen.items():
            names = [f.name for f in facts.values()]
            if not names:
                continue
            now = await pool.host(plan.env, label).run(dc.inspect_containers(names), timeout=60)
            fresh = parse_containers(now.stdout)
            moved = [n for n, f in facts.items() if fresh.get(n) is None
                     or fresh[n].id != f.id]
            if moved:
                raise PreconditionFailed(f"{', '.join(moved)} on {label} changed while the "
                                         f"{plan.kind} was being planned", host=label,
                                         hint="run it again")
    return verify


@dataclass
class Wanted:
    """Images one TO host lacks from one FROM host, and the transfer planned for them."""

    host: str
    src_host: str
    before: dict[str, str | None]  # each ref's image on TO before, for the undo
    prepared: Prepared

    @property
    def stream(self) -> tuple[object, ...]:
        """Hosts with the same stream key share one `docker save`."""
        p = self.prepared
        return (self.src_host, tuple(p.source_argv), tuple((i.ref, i.image_id) for i in p.images))


async def _wanted(pool: HostPool, plan: Plan, host_label: str, places: list[Placement],
                  transfer: Transfer) -> tuple[list[Wanted], list[str]]:
    """What `host_label` lacks, as planned transfers, and the notes the plan shows."""
    notes: list[str] = []
    dst = pool.host(plan.dst_env, host_label)
    wanted = {plan.sources[p.service].ref: plan.sources[p.service] for p in places}
    res = await dst.run(di.inspect_images(list(wanted)), timeout=60)
    had = {tag: img.get("Id", "") for img in parse_json_list(res.stdout)
           for tag in img.get("RepoTags") or []}
    had_ids = {img.get("Id", "") for img in parse_json_list(res.stdout)}
    need: dict[str, list[ImageToSend]] = {}
    for ref, src in wanted.items():
        if had.get(ref) == src.facts.image_id or (ref == src.facts.image_id and ref in had_ids):
            notes.append(f"{host_label} already has {ref}")
            continue
        img = ImageToSend(ref, src.facts.image_id, int(src.image.get("Size") or 0),
                          list((src.image.get("RootFS") or {}).get("Layers") or []))
        need.setdefault(src.host, []).append(img)
    out = []
    for src_host, images in need.items():
        prepared = await transfer.prepare(pool.host(plan.src_env, src_host), dst, images)
        if prepared.whole_because:
            notes.append(f"whole images to {host_label}: {prepared.whole_because}")
        out.append(Wanted(host_label, src_host, {i.ref: had.get(i.ref) for i in images},
                          prepared))
    return out, notes


def _transfer_steps(wanted: list[Wanted], transfer: Transfer, bus: EventBus,
                    ctx: UndoContext) -> list[Step]:
    """A step per TO host, each owning the undo of its own tags. Hosts that take the same
    stream get it from one `docker save`, sent in the last of their steps: a failure there
    finds every other host's step done, so each host's tags are put back by its own undo."""
    groups: dict[tuple[object, ...], list[Wanted]] = {}
    for w in wanted:
        groups.setdefault(w.stream, []).append(w)
    steps = []
    for w in wanted:
        group = groups[w.stream]
        p = w.prepared
        data = {"kind": "retag", "host": w.host, "before": w.before}
        params = {"images": {i.ref: i.image_id for i in p.images},
                  "bytes": sum(i.size for i in p.images), "compression": p.compression}
        if p.skip:
            params["left_out"] = f"{p.skip.layers} layer(s) {w.host} has"
        name = f"transfer images {w.src_host} -> {w.host}"
        if w is not group[-1]:
            carrier = f"transfer images {w.src_host} -> {group[-1].host}"

            async def join(carrier: str = carrier) -> str:
                return f"sent by '{carrier}', one stream for several hosts"

            steps.append(Step(name, join, bound(ctx, data), undo_data=data, params=params,
                              host=w.host, commands=[f"(in the stream of '{carrier}')"]))
            continue

        async def run(group: list[Wanted] = group) -> str:
            if len(group) == 1:
                sent = await transfer.send(group[0].prepared, bus)
                to = ""
            else:
                sent = await transfer.send_many([g.prepared for g in group], bus)
                to = f" to {', '.join(g.host for g in group)} from one read"
            return (f"{len(group[0].prepared.images)} image(s){to}, {sent.wire_bytes} bytes "
                    f"on the wire ({sent.compression}), {sent.seconds:.1f}s")

        lines = p.lines()
        for other in group[:-1]:
            lines.insert(2, f"  | {other.host}: {short_command(other.prepared.sink_argv)}")
        steps.append(Step(name, run, bound(ctx, data), undo_data=data, params=params,
                          host=w.host, commands=lines, undo_if_failed=True))
    return steps


@undoer("retag")
async def _undo_retag(ctx: UndoContext, d: dict[str, Any]) -> None:
    """Put each tag back where it pointed; a tag TO did not have goes away again."""
    dst = ctx.host(d["host"])
    for ref, old in d["before"].items():
        if old:
            await dst.run(di.tag(old, ref), timeout=60, check=True)
        elif not ref.startswith("sha256:"):
            await dst.run(di.untag(ref), timeout=60)


async def _service_steps(cfg: Config, pool: HostPool, plan: Plan, t: rc.Target, src: Source,
                         bus: EventBus) -> list[Step]:
    facts = t.facts
    entry = ServiceChange(service=t.service, host=t.host_label, container=t.container,
                          mode="run", new=Image(ref=plan.new_ref(t.service), id=src.facts.image_id),
                          old=Image(ref=facts.image_ref, id=facts.image_id) if facts else None)
    plan.changes.append(entry)
    values = cfg.values(plan.dst_env, t.service)
    where = f"{t.service} on {t.host_label}"
    short = lacking(facts.raw, values) if facts is not None else []
    if (facts is not None and facts.image_id == src.facts.image_id and facts.running
            and short):
        plan.notes.append(f"{where} runs {src.ref} without its values for {plan.dst_env} "
                          f"({', '.join(short)}): recreated with them")
    elif facts is not None and facts.image_id == src.facts.image_id and facts.running:
        entry.mode = "unchanged"
        plan.notes.append(f"{t.service} on {t.host_label} already runs {src.ref}")
        if plan.new_ref(t.service) != src.ref:
            plan.notes.append(f"{t.service} on {t.host_label} keeps its container; the image "
                              f"is tagged {plan.new_ref(t.service)} there too")
        return []
    if facts is None:
        entry.mode = "bootstrap"
        src_addr = cfg.environments[plan.src_env].own_address
        dst_addr = cfg.environments[plan.dst_env].own_address
        spec = run_spec(src.facts.raw, src.image, plan.new_ref(t.service), name=t.container,
                        rewrite=_rewriter(src_addr, dst_addr), env=values)
        for note in spec.carried:
            plan.notes.append(f"bootstrap {t.service} on {t.host_label}: {note}")
        _report(cfg, plan, where, env_of_argv(spec.create, plan.new_ref(t.service)), values)
        return [rc.start_steps(t, spec, "create"), rc.health_step(t)]
    proxy = cfg.services[t.service].proxy
    if proxy is not None and facts.compose is not None:
        raise PreconditionFailed(
            f"{where} runs under compose project {facts.compose.project}: a blue-green switch "
            "starts a second container beside it, which compose would not know", host=t.host_label,
            hint="recreate it as a plain container (ferryman keeps its docker run), or remove "
                 f"`proxy:` from services.{t.service}")
    if facts.compose is not None and facts.compose.complete:
        exist = dc.parse_files_exist((await t.host.run(
            dc.files_exist(facts.compose.config_files), timeout=30)).stdout)
        missing = [f for f in facts.compose.config_files if not exist.get(f)]
        flavour = await compose_flavour(t.host)
        if not missing and flavour:
            head = await t.host.run(["cat", facts.compose.config_files[0]], timeout=30)
            entry.mode = "compose"
            _report(cfg, plan, where, {**env_of_container(facts.raw), **values}, values)
            steps = [rc.compose_step(t, cfg.project, plan.new_ref(t.service),
                                     file_version(head.stdout), flavour == "v2", values),
                     rc.health_step(t)]
            return steps + await _durable_steps(cfg, plan, t, facts.compose)
        why = (f"its compose files are missing ({', '.join(missing)})" if missing
               else "no docker compose on the host")
        bus.warn(f"{t.service} on {t.host_label} was started by compose but {why}: "
                 "recreating it from docker inspect instead")
    img = await t.host.run(di.inspect_images([facts.image_id]), timeout=60)
    old_image = (parse_json_list(img.stdout) or [None])[0]
    kept = rc.kept_name(t.container, plan.rid)
    entry.kept = kept
    entry.restart_policy = rc.restart_policy(facts)
    if proxy is not None:
        return await _bluegreen_steps(cfg, plan, t, entry, old_image, values, bus)
    spec = run_spec(facts.raw, old_image, plan.new_ref(t.service), name=t.container, env=values)
    _report(cfg, plan, where, env_of_argv(spec.create, plan.new_ref(t.service)), values)
    return [rc.retire_steps(t, kept), rc.start_steps(t, spec, "start new"), rc.health_step(t)]


async def _bluegreen_steps(cfg: Config, plan: Plan, t: rc.Target, entry: ServiceChange,
                           old_image: dict[str, Any] | None,
                           values: dict[str, str], bus: EventBus) -> list[Step]:
    """The new side beside the old, nginx switched between them (flows.bluegreen)."""
    svc = cfg.services[t.service]
    assert t.facts is not None and svc.proxy is not None and entry.kept is not None
    where = f"{t.service} on {t.host_label}"
    new_name = bg.next_name(t.container)
    left = await t.host.run(dc.inspect_containers([new_name]), timeout=30)
    if new_name in parse_containers(left.stdout):
        raise PreconditionFailed(
            f"{new_name} already exists on {t.host_label}: an earlier switch of {t.service} "
            "did not finish", host=t.host_label,
            hint=f"`ferryman abort {plan.dst_env}` undoes that release; if none is pending, "
                 f"remove it (docker rm -f {new_name})")
    sw = await bg.read_switch(t.host, t.host_label, t.service, t.container, svc.proxy,
                              svc.upstream, t.facts)
    raw = bg.beside(t.facts.raw, svc.proxy.port, sw.new_port, t.service, t.host_label)
    ref = plan.new_ref(t.service)
    spec = run_spec(raw, old_image, ref, name=new_name, env=values)
    _report(cfg, plan, where, env_of_argv(spec.create, ref), values)
    entry.port = sw.new_port
    plan.notes.append(f"{where}: blue-green through nginx upstream {svc.upstream} "
                      f"({sw.path}): new side on 127.0.0.1:{sw.new_port}, the old one on "
                      f"127.0.0.1:{sw.live_port} drains for at most {svc.proxy.drain:g} s")
    start = bg.beside_step(t, sw, spec, new_name)
    canary = (plan.canary, cfg.project, bus) if plan.canary else None
    return bg.release_steps(t, sw, start, new_name, entry.kept, plan.rid, canary=canary)


async def _durable_steps(cfg: Config, plan: Plan, t: rc.Target,
                         info: ComposeInfo) -> list[Step]:
    """The project's files made to name the new image: a plain compose up keeps it."""
    if not cfg.environments[plan.dst_env].persist_compose:
        return []
    ref = plan.new_ref(t.service)
    edit = await durable.plan_edit(t.host, info, cfg.project, ref)
    where = f"{t.service} on {t.host_label}"
    if isinstance(edit, str):
        plan.warnings.append(f"{where}: a plain compose up in {info.working_dir} would go "
                             f"back to the previous image: {edit}")
        return []
    if not edit.changes:
        return []
    plan.record_extra.setdefault("persisted", []).append({
        "host": t.host_label, "service": t.service, "path": edit.path, "rid": plan.rid,
        "backup": durable.backup_path(edit.path, plan.rid) if edit.old is not None else None,
        "sha256": durable.digest(edit.new)})
    return [durable.persist_step(t.ctx, t.host, t.host_label, t.service, edit, plan.rid)]


def _report(cfg: Config, plan: FlowPlan, where: str, env: dict[str, str],
            own: dict[str, str]) -> None:
    for found in foreign(cfg, plan.env, env, own):
        plan.warnings.append(f"{where}: carried value {found}; set it for {plan.env} under "
                             f"environments.{plan.env}.env or services.*.env.{plan.env}")


async def tag_on_source(pool: HostPool, plan: Plan, bus: EventBus) -> None:
    """--tag: FROM's images get the release's name too, so FROM shows which build became
    it. Done once the release stands, outside its undo: a tag only adds a name. A tag that
    already names another image on FROM is left as it is, and said."""
    done: set[tuple[str, str]] = set()
    for service, src in plan.sources.items():
        ref = plan.new_ref(service)
        if ref == src.ref or (src.host, ref) in done:
            continue
        done.add((src.host, ref))
        host = pool.host(plan.src_env, src.host)
        try:
            now = await host.run(di.image_id(ref), timeout=30)
            had = now.stdout.strip() if now.ok else ""
            if had and had != src.facts.image_id:
                bus.warn(f"{ref} names another image on {src.host} ({short_id(had)}): left "
                         f"as it is; {plan.env} runs {short_id(src.facts.image_id)} as {ref}")
                continue
            if not had:
                await host.run(di.tag(src.facts.image_id, ref), timeout=60, check=True)
            bus.info(f"{ref} names {service}'s image on {src.host} ({plan.src_env}) too")
        except Exception as exc:  # the release stands; only FROM's extra name is missing
            bus.warn(f"could not tag {ref} on {src.host} ({plan.src_env}): {exc}")


async def execute(cfg: Config, pool: HostPool, plan: FlowPlan, bus: EventBus,
                  dry_run: bool = False, *, rolls_back: str | None = None,
                  journal: Journal | None = None) -> Outcome:
    """Runs a release or rollback plan under TO's lock, journalled, and records it."""
    for note in plan.notes:
        bus.info(note)
    for warning in plan.warnings:
        bus.warn(warning)
    params = {"from": plan.src_env, "to": plan.env, plan.kind: plan.rid,
              "services": {c.service: c.new.ref if c.new else None for c in plan.changes}}
    lock = plan.lock
    journal = journal or Journal(plan.kind, plan.rid, plan.env, cfg.project, lock.owner.owner,
                                 lock.owner.command)
    journal.context = plan.journal_context()
    journal.hosts = [(lock.label, lock.host)]

    async def finish(outcome: Outcome) -> None:
        await record_release(cfg, pool, plan, outcome, bus, rolls_back)
        if outcome.ok:
            await prune_kept(cfg, pool, plan.env, plan.changes, bus)
            if isinstance(plan, Plan) and plan.tag and not dry_run:
                await tag_on_source(pool, plan, bus)

    return await run_steps(bus, plan.steps, params, locks=[lock], journal=journal,
                           dry_run=dry_run, after_lock=verify_seen(pool, plan), finish=finish)
