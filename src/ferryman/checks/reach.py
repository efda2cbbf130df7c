"""reach: why the app cannot be reached from outside, layer by layer in the order of source
note 003 (container up -> port mapping -> port taken -> reachable from the host -> firewall
-> DNS), stopping at the first broken layer. When every layer on the host passes, what is
left is outside the host: the cloud security group."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..docker.inspect import ContainerFacts
from . import commands as cc
from . import firewall, nft, ports, probe
from .context import HostContext
from .findings import Evidence, Finding, Fix, Status, fail, ok, warn

NAME = "reach"
LAYERS = ("container up", "port mapping", "port not taken", "reachable from the host",
          "firewall", "DNS")
PROBE_TIMEOUT = 3
ANY = {"", "0.0.0.0", "::"}


@dataclass
class Layer:
    n: int
    ok: bool
    detail: str
    status: Status = Status.FAIL  # how bad it is when broken
    evidence: list[Evidence] = field(default_factory=list)
    fix: Fix | None = None

    @property
    def name(self) -> str:
        return LAYERS[self.n - 1]


def parse_addresses(getent: str) -> list[str]:
    """Addresses from `getent ahosts` (one per socket type) or `getent hosts`."""
    return list(dict.fromkeys(line.split()[0] for line in getent.splitlines() if line.split()))


async def _dns(ctx: HostContext) -> Layer:
    assert ctx.domain
    res = await ctx.run(cc.resolve(ctx.domain), timeout=15)
    mine = await ctx.cached(cc.own_addresses())
    found = parse_addresses(res.stdout) if res.ok else []
    own = {ctx.own_address, *mine.stdout.split()}
    ev = [ctx.evidence(res), ctx.evidence(mine)]
    if not found:
        return Layer(6, False, f"{ctx.domain} does not resolve on this host", evidence=ev,
                     fix=Fix(f"add an A record for {ctx.domain} -> {ctx.own_address}"))
    if not own & set(found):
        return Layer(6, False, f"{ctx.domain} resolves to {', '.join(found)}, not to this "
                     f"host ({ctx.own_address})", evidence=ev,
                     fix=Fix(f"point {ctx.domain} at {ctx.own_address} (A record), or "
                             "check which server answers there"))
    return Layer(6, True, f"{ctx.domain} resolves to {', '.join(found)}", evidence=ev)


async def _layers(ctx: HostContext, f: ContainerFacts, binds: list[ports.Binding]) -> list[Layer]:
    """The layers up to and including the first broken one."""
    out: list[Layer] = []
    inspect_res, _ = await ctx.services()
    state_ev = [ctx.evidence(inspect_res, f"{f.name}: Status={f.status} "
                             f"ExitCode={f.exit_code}")] if inspect_res else []
    if not f.running:
        return [Layer(1, False, f"{f.name} is {f.status} (exit code {f.exit_code})",
                      evidence=state_ev, fix=Fix("see the containers check for its logs"))]
    out.append(Layer(1, True, f"{f.name} runs"))
    live = ports.bindings(f, live=True)
    mapping = ", ".join(b.text for b in binds)
    if not live:
        out.append(Layer(2, False, f"no port is published now (asked: {mapping})",
                         evidence=state_ev))
        return out
    out.append(Layer(2, True, mapping))
    ss_res, listeners = await ctx.listeners()
    for b in binds:
        others = [x for x in listeners if x.port == b.host_port and not x.docker]
        if others:
            out.append(Layer(3, False, f"host port {b.host_port} is held by {others[0].who}",
                             evidence=[ctx.evidence(ss_res, ports.listener_text(others))],
                             fix=Fix("free the port or publish the app on another one")))
            return out
    holder = ports.web_holder(listeners)
    if holder is not None and not {b.host_port for b in binds} & set(ports.WEB_PORTS):
        out.append(Layer(
            3, False, f"port {holder.port} is held by {holder.who}; the app is on "
            f"{', '.join(str(b.host_port) for b in binds)}: visitors of port {holder.port} "
            "reach that server, not the app", status=Status.WARN,
            evidence=[ctx.evidence(ss_res, ports.listener_text(
                [x for x in listeners if x.port == holder.port]))],
            fix=Fix(f"make it a reverse proxy to the app: `ferryman proxy-config {ctx.env} "
                    "--domain DOMAIN`")))
        return out
    out.append(Layer(3, True, "no other process holds the published ports"))
    for b in binds:
        ip = "127.0.0.1" if b.host_ip in ANY else b.host_ip
        res = await ctx.run(cc.host_connect(ip, b.host_port, PROBE_TIMEOUT),
                            timeout=PROBE_TIMEOUT + 20)
        seen = probe.outcome(res)
        if not seen.open:
            out.append(Layer(4, False, f"{ip}:{b.host_port} from the host: {seen.result}",
                             evidence=[ctx.evidence(res, seen.message)],
                             fix=Fix("check the app inside the container listens on "
                                     f"{b.container_port} (and on 0.0.0.0, not 127.0.0.1)")))
            return out
    out.append(Layer(4, True, "the host reaches " + ", ".join(
        f"127.0.0.1:{b.host_port}" for b in binds)))
    tables, fw, _ = await firewall.read(ctx)
    rs = await ctx.ruleset()
    blocking = nft.residual_forward(tables)
    if blocking and not fw.active:
        out.append(Layer(5, False, f"table {', '.join(t.spec for t in blocking)} (left by "
                         "firewalld) rejects forwarded traffic: requests from outside are "
                         "forwarded to the container and rejected there",
                         evidence=[ctx.evidence(rs, "\n".join(
                             nft.table_text(rs.stdout, t) for t in blocking))],
                         fix=Fix("`ferryman doctor --fix` applies the firewall check's fix")))
        return out
    drops = nft.other_blocking(tables, "forward")
    if drops:
        t, c = drops[0]
        out.append(Layer(5, False, f"chain {c.name} of table {t.spec} drops forwarded traffic "
                         "by default: requests from outside to published ports may be dropped",
                         status=Status.WARN,
                         evidence=[ctx.evidence(rs, nft.table_text(rs.stdout, t))]))
        return out
    out.append(Layer(5, True, "no firewall rule on the host blocks forwarded traffic"
                     + (" (firewalld runs: check its zone opens the ports)" if fw.active
                        else "")))
    if ctx.domain:
        dns = await ctx.once("dns", lambda: _dns(ctx))
        out.append(dns)
    return out


async def run(ctx: HostContext) -> list[Finding]:
    pub = await ports.published(ctx)
    out: list[Finding] = []
    for service, (f, binds) in pub.items():
        if not binds:
            continue
        layers = await _layers(ctx, f, binds)
        data = {"layers": [{"n": x.n, "name": x.name, "ok": x.ok, "detail": x.detail}
                           for x in layers]}
        last = layers[-1]
        if not last.ok:
            data.update(layer=last.n, layer_name=last.name)
            passed = f"; layers 1-{last.n - 1} pass" if last.n > 1 else ""
            maker = fail if last.status == Status.FAIL else warn
            out.append(maker(NAME, service, f"layer {last.n}/{len(LAYERS)} ({last.name}) is "
                             f"broken: {last.detail}{passed}", evidence=last.evidence,
                             fix=last.fix, data=data))
            continue
        host_ports = ", ".join(str(b.host_port) for b in binds)
        dns = "" if ctx.domain else " (DNS not checked: pass --domain)"
        data.update(layer=None, suspect="security group")
        out.append(ok(NAME, service, f"every layer on the host passes{dns}: if it still "
                      "cannot be reached from outside, the remaining suspect is the cloud "
                      f"security group (or a provider firewall): allow TCP {host_ports} "
                      "inbound", data=data))
    if not out:
        out.append(ok(NAME, "-", "no service publishes a port: nothing to reach from outside"))
    return out
