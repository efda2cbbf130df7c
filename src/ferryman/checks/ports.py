"""ports: who listens on each published port, and the port-80 trap of source note 003 (a host
nginx holds 80, the app was mapped to 8081, users reach nginx): a reverse proxy is the way."""

from __future__ import annotations

from dataclasses import dataclass

from ..docker.inspect import ContainerFacts
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn
from .ss import Listener, on_port, others_on

NAME = "ports"
WEB_PORTS = (80, 443)


@dataclass
class Binding:
    host_ip: str  # "" or 0.0.0.0: every interface
    host_port: int
    container_port: int
    proto: str

    @property
    def text(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        return f"{ip}:{self.host_port}->{self.container_port}/{self.proto}"


def bindings(f: ContainerFacts, live: bool = False) -> list[Binding]:
    """Published ports: what runs now (NetworkSettings.Ports), else what was asked
    (HostConfig.PortBindings) for a container that is not running; `live`: only the former."""
    now = (f.raw.get("NetworkSettings") or {}).get("Ports") or {}
    asked = (f.raw.get("HostConfig") or {}).get("PortBindings") or {}
    source = now if any(now.values()) or live else asked
    out = []
    for key, binds in source.items():
        port, _, proto = key.partition("/")
        for b in binds or []:
            hp = str(b.get("HostPort") or "")
            if hp.isdigit() and port.isdigit():
                out.append(Binding(b.get("HostIp") or "", int(hp), int(port), proto or "tcp"))
    # One line per port: Docker lists 0.0.0.0 and :: separately.
    seen: dict[tuple[int, int, str], Binding] = {}
    for b in out:
        seen.setdefault((b.host_port, b.container_port, b.proto), b)
    return list(seen.values())


def listener_text(listeners: list[Listener]) -> str:
    return "\n".join(f"{x.endpoint} {x.who}" for x in listeners) or "(nobody listens)"


def web_holder(listeners: list[Listener]) -> Listener | None:
    """A server other than Docker that holds 80 or 443."""
    for port in WEB_PORTS:
        others = others_on(listeners, port)
        if others:
            return others[0]
    return None


async def published(ctx: HostContext) -> dict[str, tuple[ContainerFacts, list[Binding]]]:
    _, facts = await ctx.services()
    out = {}
    for p in ctx.placements:
        f = facts.get(p.container)
        if f is not None:
            out[p.service] = (f, [b for b in bindings(f) if b.proto == "tcp"])
    return out


async def run(ctx: HostContext) -> list[Finding]:
    ss_res, listeners = await ctx.listeners()
    if not ss_res.ok:
        return [warn(NAME, "ss", "cannot list listening sockets (ss -tlnp)",
                     evidence=[ctx.evidence(ss_res)])]
    out: list[Finding] = []
    pub = await published(ctx)
    for service, (f, binds) in pub.items():
        if not binds:
            out.append(ok(NAME, service, f"{f.name} publishes no port (reached only through "
                          "its Docker networks)", data={"ports": []}))
            continue
        conflicts = []
        for b in binds:
            others = others_on(listeners, b.host_port)
            if others:
                conflicts.append((b, others))
        ports = [b.host_port for b in binds]
        ev = [ctx.evidence(ss_res, listener_text(
            [x for p in ports for x in on_port(listeners, p)]))]
        data = {"ports": [b.text for b in binds]}
        if conflicts:
            b, others = conflicts[0]
            state = "cannot start" if not f.running else "shares its port"
            out.append(fail(
                NAME, service, f"{f.name} {state}: host port {b.host_port} ({b.text}) is held "
                f"by {others[0].who}", evidence=ev, data={**data, "holder": others[0].names},
                fix=Fix(f"stop {others[0].names[0] if others[0].names else 'that process'} or "
                        f"publish {f.name} on another port and put a reverse proxy in front")))
        else:
            state = "docker-proxy listens" if f.running else "free for it to start"
            out.append(ok(NAME, service, f"{f.name}: {', '.join(b.text for b in binds)} "
                          f"({state})", evidence=ev, data=data))
    holder = web_holder(listeners)
    app_ports = sorted({b.host_port for _, binds in pub.values() for b in binds})
    if holder is not None and app_ports and not set(app_ports) & set(WEB_PORTS):
        env = ctx.env
        kind = "nginx" if "nginx" in holder.names else (holder.names or ["a server"])[0]
        out.append(warn(
            NAME, f"port {holder.port}",
            f"port {holder.port} is held by {holder.who}, not by the app, which is published "
            f"on {', '.join(map(str, app_ports))}: users opening http://DOMAIN/ reach "
            f"{kind}, not the app. Let that server forward to the app (reverse proxy)",
            evidence=[ctx.evidence(ss_res, listener_text(
                on_port(listeners, holder.port)
                + [x for p in app_ports for x in on_port(listeners, p)]))],
            fix=Fix(f"`ferryman proxy-config {env} --domain DOMAIN` writes an nginx server "
                    f"block (/ , /api, /ws with the Upgrade headers) for ports "
                    f"{', '.join(map(str, app_ports))} and checks it with nginx -t"),
            data={"holder": holder.names, "holder_port": holder.port, "app_ports": app_ports}))
    return out
