"""Blue-green through the operator's nginx: the new side starts beside the old one, nginx is
switched to it by rewriting the upstream file ferryman owns and reloading, the old side
drains and is kept for rollback.

Steps, each with its undo (the undos run backwards, so traffic is back on the old side
before the new one goes away):
  1. start the new container as NAME.ferryman-next on the free one of the two loopback ports
  2. its health gate, on its own port
  3. write the upstream, `nginx -t`, reload, and ask nginx for the generation it serves
  4. drain: wait until nginx holds no connection to the old side (capped)
  5. stop the old container and keep it as NAME.ferryman-RELEASE
  6. the new container takes the service's name (and its restart policy)
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config import Config
from ..config.schema import Health, Proxy, Service
from ..docker import commands as dc
from ..docker.inspect import ContainerFacts, parse_containers
from ..errors import BadInput, FlowFailed, PreconditionFailed
from ..events import EventBus
from ..hosts import HostPool
from ..nginx import canary as cn
from ..nginx import commands as nc
from ..nginx import upstream as up
from ..state import ABSENT, read_file, state_dir
from ..steps import Step
from ..transport import Host
from ..transport.base import short_command
from ..undo import UndoContext, bound, undoer
from . import recreate as rc
from .health import wait_healthy

NEXT = "ferryman-next"
CONFIRM_SECONDS = 10.0  # a reload that has not taken by then has failed
EARLY_JUDGE = 200  # requests on the new side before a canary step may abort before its end
POLL = 0.25


def next_name(container: str) -> str:
    return f"{container}.{NEXT}"


def side_health(health: Health | None, port: int) -> Health | None:
    """The service's HTTP check, asked of one side's own loopback port."""
    if health is None or not health.http:
        return health
    parts = urlsplit(health.http)
    return health.model_copy(update={"http": urlunsplit(
        (parts.scheme, f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))})


async def live_health(host: Host, service: Service, container: str) -> Health | None:
    """The service's check as `container` answers it: a proxied service's side is on its own
    loopback port, not on the port the check names."""
    if service.proxy is None or service.health is None or not service.health.http:
        return service.health
    res = await host.run(dc.inspect_containers([container]), timeout=30)
    facts = parse_containers(res.stdout).get(container)
    port = published_port(facts, service.proxy.port) if facts else None
    return side_health(service.health, port) if port else service.health


def published_port(facts: ContainerFacts, port: int) -> int | None:
    """The host port the container's `port`/tcp is published on, if any."""
    bindings = ((facts.raw.get("HostConfig") or {}).get("PortBindings") or {}).get(
        f"{port}/tcp") or []
    for b in bindings:
        # nginx reaches it on 127.0.0.1: a port bound to another address only is not there
        if str(b.get("HostPort") or "").isdigit() and (b.get("HostIp") or "") in (
                "", "0.0.0.0", "::", "127.0.0.1"):
            return int(b["HostPort"])
    return None


def beside(raw: dict[str, Any], port: int, host_port: int, service: str,
           host: str) -> dict[str, Any]:
    """The container's inspect data with the proxied port published on 127.0.0.1:host_port
    alone: nginx serves the public side, and the two sides cannot share a public port."""
    out = copy.deepcopy(raw)
    hc = out.setdefault("HostConfig", {})
    others = sorted(k for k, v in (hc.get("PortBindings") or {}).items()
                    if v and k != f"{port}/tcp")
    if others:
        raise PreconditionFailed(
            f"{service} on {host} publishes {', '.join(others)} besides its proxied port "
            f"{port}: the old and the new side cannot hold them both at once", host=host,
            hint="serve those through nginx too, or release this service without `proxy:`")
    hc["PortBindings"] = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}
    return out


@dataclass
class Switch:
    """One proxied service on one host: where its upstream is and which side is live."""

    service: str
    host_label: str
    host: Host
    container: str
    proxy: Proxy
    upstream: str
    path: str
    text: str  # the upstream file as it is now
    live_port: int
    new_port: int

    @property
    def generation(self) -> str | None:
        return up.parse(self.text).generation


async def read_switch(host: Host, host_label: str, service: str, container: str,
                      proxy: Proxy, upstream: str, live: ContainerFacts,
                      new_port: int | None = None) -> Switch:
    """Reads the host's nginx and upstream file; refuses (exit 3) what cannot switch cleanly.
    `new_port`: where the new side will be (default: the free one of `proxy.ports`)."""
    path = up.file_path(proxy.dir, upstream)
    res = await host.run(read_file(path), timeout=30)
    if res.exit_status == ABSENT:
        raise PreconditionFailed(
            f"{service} on {host_label}: the upstream file {path} is missing", host=host_label,
            hint=f"`ferryman proxy-upstream ENV {service}` writes it for the running "
                 f"container; then point the location at it (proxy_pass http://{upstream};)")
    if not res.ok:
        raise PreconditionFailed(f"cannot read {path} on {host_label}: {res.stderr.strip()}",
                                 host=host_label)
    current = up.parse(res.stdout)
    dumped = await host.run(nc.dump(proxy.nginx), timeout=60)
    if not dumped.ok:
        raise PreconditionFailed(
            f"`{proxy.nginx} -T` fails on {host_label}: "
            f"{(dumped.stderr or dumped.stdout).strip()[-400:]}", host=host_label,
            hint="nginx must be installed and its config valid before a blue-green switch")
    if not up.routes_to(dumped.stdout, upstream):
        raise PreconditionFailed(
            f"nginx on {host_label} sends no traffic to upstream {upstream}: switching it "
            "would change nothing, and stopping the old side would cut the service",
            host=host_label,
            hint=f"in the location that serves {service}, write `proxy_pass http://{upstream};`"
                 f" and reload nginx (its upstream is in {path})")
    live_port = published_port(live, proxy.port)
    if current.port is None or current.port != live_port:
        raise PreconditionFailed(
            f"{path} on {host_label} sends traffic to 127.0.0.1:{current.port}, but {container}"
            f" is published on {live_port or 'no host port'} for port {proxy.port}",
            host=host_label,
            hint=f"`ferryman proxy-upstream ENV {service}` points it at the running container")
    new_port = new_port or up.other_port(proxy.ports, live_port)
    if new_port == live_port:
        raise PreconditionFailed(f"the new side of {service} on {host_label} would take "
                                 f"port {new_port}, which the live side holds", host=host_label)
    taken = await host.run(nc.listening(new_port), timeout=30)
    if taken.ok and taken.stdout.strip():
        raise PreconditionFailed(
            f"port {new_port} on {host_label} is taken ({taken.stdout.strip().splitlines()[0]})"
            f": the new side of {service} needs it", host=host_label,
            hint="free it, or choose other `proxy.ports`")
    return Switch(service, host_label, host, container, proxy, upstream, path, res.stdout,
                  live_port, new_port)


# --- the upstream switch -------------------------------------------------------------------

async def _confirm(host: Host, proxy: Proxy, upstream: str, generation: str) -> float:
    """Seconds until nginx serves `generation`; FlowFailed when it does not in time."""
    argv = nc.generation(proxy.marker_port, up.marker_host(upstream), up.GENERATION_PATH)
    start = time.monotonic()
    seen = ""
    while time.monotonic() - start < CONFIRM_SECONDS:
        res = await host.run(argv, timeout=10)
        seen = res.stdout.strip()
        if res.ok and seen == generation:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise FlowFailed(f"nginx on {host.label} still serves generation {seen or '(none)'} "
                     f"{CONFIRM_SECONDS:.0f} s after the reload, not {generation}",
                     hint="the reload did not take: see nginx's error log "
                          "(/var/log/nginx/error.log)")


async def apply_upstream(host: Host, proxy: Proxy, upstream: str, path: str, text: str) -> str:
    """Writes the file, checks the whole config, reloads; confirms when it carries a
    generation. Raises before the reload when nginx refuses the config."""
    await host.run(nc.install(path), input=text.encode(), timeout=30, check=True)
    test = await host.run(nc.test(proxy.nginx), timeout=30)
    if not test.ok:
        raise FlowFailed(f"nginx -t on {host.label} refused the upstream",
                         evidence=(test.stderr or test.stdout).strip())
    await host.run(nc.reload(proxy.nginx), timeout=30, check=True)
    generation = up.parse(text).generation
    port = up.parse(text).port
    if generation is None:
        return f"nginx reloaded: traffic to 127.0.0.1:{port}"
    took = await _confirm(host, proxy, upstream, generation)
    return f"nginx serves generation {generation} ({took:.2f} s after the reload): " \
           f"traffic to 127.0.0.1:{port}"


def _back_to_live(sw: Switch) -> dict[str, Any]:
    """The undo data of a step that rewrites the upstream: the file as it was, and the live
    side to check before it is written back."""
    return {"kind": "upstream", "host": sw.host_label, "service": sw.service,
            "container": sw.container, "path": sw.path, "text": sw.text,
            "upstream": sw.upstream, "port": sw.live_port,
            "proxy": sw.proxy.model_dump(mode="json")}


def switch_step(ctx: UndoContext, sw: Switch, port: int, generation: str, what: str) -> Step:
    text = up.render(sw.upstream, sw.service, port, generation, sw.proxy.marker_port)

    async def run() -> str:
        return await apply_upstream(sw.host, sw.proxy, sw.upstream, sw.path, text)

    data = _back_to_live(sw)
    return Step(f"switch nginx to {what} {sw.service} on {sw.host_label}", run,
                bound(ctx, data), undo_data=data,
                params={"upstream": sw.upstream, "path": sw.path, "to": f"127.0.0.1:{port}",
                        "from": f"127.0.0.1:{sw.live_port}", "generation": generation},
                host=sw.host_label, undo_if_failed=True,
                commands=[f"write {sw.path}:\n{text.rstrip()}",
                          short_command(nc.test(sw.proxy.nginx)),
                          short_command(nc.reload(sw.proxy.nginx))])


@undoer("upstream")
async def _undo_upstream(ctx: UndoContext, d: dict[str, Any]) -> str:
    """Traffic back to the side that had it, once that side answers again."""
    host = ctx.host(d["host"])
    proxy = Proxy.model_validate(d["proxy"])
    gate = await wait_healthy(host, d["service"], d["container"],
                              side_health(ctx.health(d["service"]), d["port"]), env=ctx.env)
    done = await apply_upstream(host, proxy, d["upstream"], d["path"], d["text"])
    return f"{gate}; {done}"


# --- canary: the share of the new side step by step --------------------------------------

@dataclass(frozen=True)
class Canary:
    weights: tuple[int, ...]  # percent to the new side, rising, the last 100
    step: float  # seconds each weight bakes

    @staticmethod
    def parse(weights: str, step: float) -> Canary:
        try:
            values = tuple(int(w) for w in weights.split(",") if w.strip())
        except ValueError:
            raise BadInput(f"--canary {weights!r}: expected rising percentages such as "
                           "5,25,50,100") from None
        if not values or any(not 0 < w <= 100 for w in values) or list(values) != sorted(
                set(values)):
            raise BadInput(f"--canary {weights!r}: expected rising percentages between 1 and "
                           "100, such as 5,25,50,100")
        if step <= 0:
            raise BadInput("--step: a duration above zero")
        return Canary(values if values[-1] == 100 else (*values, 100), step)


def control_path(project: str, service: str) -> str:
    """Where `ferryman canary ENV promote|abort` leaves its word for a running canary."""
    return f"{state_dir(project)}/canary-{service}"


async def _bake(sw: Switch, canary: Canary, weight: int, offset: int, control: str,
                bus: EventBus) -> str | None:
    """One weight's bake: its numbers judged every second. Returns "promote" when asked
    to; raises FlowFailed to abort (numbers or the operator)."""
    p = sw.proxy
    log = cn.log_path(sw.upstream)
    end = time.monotonic() + canary.step
    verdict = cn.Verdict(False, "no request yet")
    while True:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        lines = await sw.host.run(nc.read_from(log, offset), timeout=30)
        if not lines.ok:
            raise FlowFailed(f"the canary log {log} on {sw.host_label} cannot be read: "
                             f"{lines.stderr.strip()}", hint="without it the new side's "
                             "errors cannot be judged")
        old, new = cn.tally(lines.stdout, sw.live_port, sw.new_port)
        over = time.monotonic() >= end
        # Within the step only a clear case aborts: a few early errors are noise.
        least = p.canary_min_requests if over else max(p.canary_min_requests, EARLY_JUDGE)
        verdict = cn.judge(old, new, p.canary_margin, least)
        if verdict.abort:
            raise FlowFailed(f"canary of {sw.service} on {sw.host_label} aborted at {weight}%: "
                             f"{verdict.reason}", hint=f"its requests are in {log} on "
                             f"{sw.host_label}")
        asked = (await sw.host.run(nc.take_control(control), timeout=30)).stdout.strip()
        if asked == "abort":
            raise FlowFailed(f"canary of {sw.service} on {sw.host_label} aborted at {weight}% "
                             f"by `ferryman canary ... abort` ({verdict.reason})")
        if asked == "promote":
            bus.info(f"canary {sw.service} on {sw.host_label} {weight}%: promoted by `ferryman "
                     f"canary ... promote` ({verdict.reason})")
            return "promote"
        if over:
            bus.info(f"canary {sw.service} on {sw.host_label} {weight}%: {verdict.reason}: "
                     "next step")
            return None


def canary_step(ctx: UndoContext, sw: Switch, canary: Canary, generation: str, project: str,
                bus: EventBus) -> Step:
    """The switch in weighted steps (nginx/canary.py), then the plain file on the new side.
    Its undo is the switch's: the previous file back, traffic 100% on the old side."""
    p = sw.proxy
    control = control_path(project, sw.service)
    final = up.render(sw.upstream, sw.service, sw.new_port, generation, p.marker_port)

    async def run() -> str:
        await sw.host.run(["rm", "-f", control], timeout=30)
        for weight in canary.weights[:-1]:
            text = cn.render(sw.upstream, sw.service, sw.live_port, sw.new_port, weight,
                             f"{generation}-{weight}", p.marker_port, p.canary_port,
                             p.canary_header)
            size = await sw.host.run(nc.file_size(cn.log_path(sw.upstream)), timeout=30)
            offset = int(size.stdout.strip()) if size.stdout.strip().isdigit() else 0
            await apply_upstream(sw.host, p, sw.upstream, sw.path, text)
            bus.info(f"canary {sw.service} on {sw.host_label}: {weight}% to the new side for "
                     f"{canary.step:g} s ({p.canary_header} sends a tester there)")
            if await _bake(sw, canary, weight, offset, control, bus) == "promote":
                break
        return "100% to the new side: " + await apply_upstream(sw.host, p, sw.upstream,
                                                                sw.path, final)

    data = _back_to_live(sw)
    return Step(f"canary {'/'.join(map(str, canary.weights))} of {sw.service} on "
                f"{sw.host_label}", run, bound(ctx, data), undo_data=data,
                params={"upstream": sw.upstream, "weights": list(canary.weights),
                        "step": f"{canary.step:g} s", "margin": f"{p.canary_margin:g} points",
                        "header": p.canary_header, "log": cn.log_path(sw.upstream)},
                host=sw.host_label, undo_if_failed=True,
                commands=[f"write {sw.path}: the canary router at each weight, then:\n"
                          f"{final.rstrip()}", short_command(nc.test(p.nginx)),
                          short_command(nc.reload(p.nginx))])


# --- drain, retire, rename -----------------------------------------------------------------

async def drain(host: Host, port: int, cap: float) -> str:
    """Waits until nginx's workers of the earlier configuration are gone and no connection
    to the side on `port` is left, at most `cap` seconds. An old worker can still hold a
    request it accepted before the reload and not yet passed on: counting connections alone
    would miss it. Long-lived connections (WebSockets) keep old workers past the cap: the
    side's stop then ends them (a well-made app says goodbye with 1001)."""
    start = time.monotonic()
    clear = 0
    while True:
        conns, workers = await asyncio.gather(host.run(nc.connections(port), timeout=30),
                                              host.run(nc.old_workers(), timeout=30))
        count = len(conns.stdout.splitlines()) if conns.ok else -1
        old = int(workers.stdout.strip() or 0) if workers.stdout.strip().isdigit() else -1
        clear = clear + 1 if count == 0 and old == 0 else 0
        took = time.monotonic() - start
        if clear >= 2:  # two looks in a row: nothing slipped in between
            return (f"no connection left to 127.0.0.1:{port} and no nginx worker of the "
                    f"earlier configuration after {took:.1f} s")
        if took >= cap:
            left = "unknown (ss failed)" if count < 0 else str(count)
            return (f"{left} connection(s) to 127.0.0.1:{port} and {max(old, 0)} nginx "
                    f"worker(s) of the earlier configuration still there after {cap:.0f} s "
                    "(long-lived connections, such as WebSockets): the old side's stop ends "
                    "them")
        await asyncio.sleep(POLL)


def drain_step(sw: Switch, port: int, what: str) -> Step:
    async def run() -> str:
        return await drain(sw.host, port, sw.proxy.drain)

    return Step(f"drain {what} {sw.service} on {sw.host_label}", run,
                params={"port": f"127.0.0.1:{port}", "cap": f"{sw.proxy.drain:g} s"},
                host=sw.host_label, commands=[short_command(nc.connections(port))])


def rename_step(ctx: UndoContext, sw: Switch, current: str, policy: str | None) -> Step:
    """`current` takes the service's name; with `policy`, its restart policy is set too."""
    name = sw.container
    argvs = [dc.rename_container(current, name)]
    if policy and policy != "no":
        argvs.append(dc.set_restart_policy(name, policy))

    async def run() -> str:
        for argv in argvs:
            await sw.host.run(argv, timeout=60, check=True)
        return f"{current} is {name} now"

    data = {"kind": "renamed", "host": sw.host_label, "from": current, "to": name,
            "policy_off": bool(policy and policy != "no")}
    return Step(f"name new {sw.service} {name} on {sw.host_label}", run, bound(ctx, data),
                undo_data=data, params={"from": current, "to": name}, host=sw.host_label,
                undo_if_failed=True, commands=[short_command(a) for a in argvs])


@undoer("renamed")
async def _undo_renamed(ctx: UndoContext, d: dict[str, Any]) -> None:
    host = ctx.host(d["host"])
    res = await host.run(dc.inspect_containers([d["to"], d["from"]]), timeout=60)
    now = parse_containers(res.stdout)
    if d["to"] in now and d["from"] not in now:
        await host.run(dc.rename_container(d["to"], d["from"]), timeout=60, check=True)
        if d.get("policy_off"):  # a kept container never comes back by itself
            await host.run(dc.set_restart_policy(d["from"], "no"), timeout=60, check=True)


def gate_step(sw: Switch, container: str, port: int, health: Health | None,
              what: str, env: str) -> Step:
    checked = side_health(health, port)

    async def run() -> str:
        return await wait_healthy(sw.host, sw.service, container, checked, env=env)

    params: dict[str, Any] = {"container": container, "port": f"127.0.0.1:{port}"}
    if checked and checked.http:
        params["http"] = checked.http
    return Step(f"health of {what} {sw.service} on {sw.host_label}", run, params=params,
                host=sw.host_label)


def beside_step(t: rc.Target, sw: Switch, spec: Any, new_name: str) -> Step:
    """start_steps for the new side, with an undo that drains it and never removes it while
    nginx's file still sends traffic to it (a switch back that failed)."""
    step = rc.start_steps(dataclasses.replace(t, container=new_name, facts=None), spec,
                          "start new")
    data = {"kind": "beside", "host": sw.host_label, "container": new_name,
            "path": sw.path, "port": sw.new_port, "drain": sw.proxy.drain}
    step.undo = bound(t.ctx, data)
    step.undo_data = data
    return step


@undoer("beside")
async def _undo_beside(ctx: UndoContext, d: dict[str, Any]) -> str:
    host = ctx.host(d["host"])
    now = await host.run(read_file(d["path"]), timeout=30)
    target = f"127.0.0.1:{d['port']}"
    if now.ok and target in now.stdout:
        raise FlowFailed(f"{d['container']} is left running on {host.label}: nginx's "
                         f"{d['path']} still sends traffic to {target}",
                         hint="put the previous side back first (ferryman proxy-upstream "
                              "points the file at the container named as the service)")
    drained = await drain(host, d["port"], float(d.get("drain", 30)))
    res = await host.run(dc.inspect_containers([d["container"]]), timeout=30)
    if d["container"] in parse_containers(res.stdout):
        # Stopped first: the app finishes what it serves and says goodbye to its WebSockets.
        await host.run(dc.stop_container(d["container"]), timeout=120)
        await host.run(dc.remove_container(d["container"], force=True), timeout=120, check=True)
    return f"{d['container']} stopped and removed ({drained})"


def start_kept_step(ctx: UndoContext, sw: Switch, kept: str) -> Step:
    """Rollback's new side is the container the release kept: started under its kept name."""
    argv = dc.start_container(kept)

    async def run() -> str:
        await sw.host.run(argv, timeout=120, check=True)
        return f"{kept} started on 127.0.0.1:{sw.new_port}"

    data = {"kind": "started", "host": sw.host_label, "container": kept}
    return Step(f"start previous {sw.service} beside the current on {sw.host_label}", run,
                bound(ctx, data), undo_data=data, params={"container": kept},
                host=sw.host_label, undo_if_failed=True, commands=[short_command(argv)])


@undoer("started")
async def _undo_started(ctx: UndoContext, d: dict[str, Any]) -> None:
    await ctx.host(d["host"]).run(dc.stop_container(d["container"]), timeout=120, check=True)


def release_steps(t: rc.Target, sw: Switch, start: Step, new_name: str, kept: str,
                  generation: str, policy: str | None = None,
                  canary: tuple[Canary, str, EventBus] | None = None) -> list[Step]:
    """The switch around a started new side: gate, switch (or canary: with the project and
    the bus its decisions are told on), drain, retire, rename."""
    switch = (switch_step(t.ctx, sw, sw.new_port, generation, "new") if canary is None
              else canary_step(t.ctx, sw, canary[0], generation, canary[1], canary[2]))
    return [
        start,
        gate_step(sw, new_name, sw.new_port, t.health, "new", t.ctx.env),
        switch,
        drain_step(sw, sw.live_port, "old"),
        rc.retire_steps(t, kept, gate_on_undo=False),
        rename_step(t.ctx, sw, new_name, policy),
    ]


# --- proxy-upstream: the file written for the container that runs now ------------------------

async def setup_steps(cfg: Config, pool: HostPool, env: str, services: list[str],
                      stamp: str) -> list[Step]:
    """For each proxied service, its upstream file pointed at the running container's
    published port (what an operator's location used before), nginx checked and reloaded."""
    ctx = UndoContext(cfg, pool, env)
    await pool.resolve(env)
    proxied = [s for s in services or list(cfg.services) if cfg.services[s].proxy]
    if not proxied:
        raise BadInput("no service of ferryman.yml has `proxy:`" if not services else
                       f"{', '.join(services)}: no `proxy:` in ferryman.yml")
    steps: list[Step] = []
    for p in pool.placements(env, proxied):
        svc = cfg.services[p.service]
        assert svc.proxy is not None
        host = pool.host(env, p.host)
        res = await host.run(dc.inspect_containers([p.container]), timeout=30)
        facts = parse_containers(res.stdout).get(p.container)
        if facts is None or not facts.running:
            raise PreconditionFailed(f"{p.service} on {p.host}: container {p.container} is "
                                     "not running", host=p.host)
        port = published_port(facts, svc.proxy.port)
        if port is None:
            raise PreconditionFailed(
                f"{p.container} on {p.host} does not publish port {svc.proxy.port}: nginx "
                "cannot reach it", host=p.host,
                hint=f"services.{p.service}.proxy.port is the container port the app serves")
        path = up.file_path(svc.proxy.dir, svc.upstream)
        now = await host.run(read_file(path), timeout=30)
        sw = Switch(p.service, p.host, host, p.container, svc.proxy, svc.upstream, path,
                    now.stdout if now.ok else "", port, port)
        steps.append(switch_step(ctx, sw, port, f"setup-{stamp}", "running"))
    return steps
