"""networks: the networks the services use exist, and each service reaches its peers' ports
from inside its own network namespace (source note 000: "No route to host" between
containers while the host itself reached them)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..docker import commands as dc
from ..docker.inspect import ContainerFacts
from . import commands as cc
from . import probe
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok, warn

NAME = "networks"
PROBE_TIMEOUT = 3
PARALLEL = 4  # probes at once per host; the SSH connection has a few channels to spare
MAX_PROBES = 60
SPECIAL = {"host", "none"}
BLOCKED = {probe.NO_ROUTE, probe.TIMEOUT, probe.UNREACHABLE}


def networks_of(f: ContainerFacts) -> list[str]:
    nets = list(((f.raw.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    if nets:
        return nets
    mode = (f.raw.get("HostConfig") or {}).get("NetworkMode") or ""
    return [] if mode in ("", "default") or mode.startswith("container:") else [mode]


def tcp_ports(f: ContainerFacts) -> list[int]:
    exposed = (f.raw.get("Config") or {}).get("ExposedPorts") or {}
    ports = []
    for key in exposed:
        port, _, proto = key.partition("/")
        if (proto or "tcp") == "tcp" and port.isdigit():
            ports.append(int(port))
    return sorted(ports)


def members(network_inspect: str) -> dict[str, dict[str, str]]:
    """network -> {container name: IPv4} from `docker network inspect`."""
    try:
        items: list[dict[str, Any]] = json.loads(network_inspect or "[]")
    except ValueError:
        return {}
    out: dict[str, dict[str, str]] = {}
    for net in items:
        conts = net.get("Containers") or {}
        out[net.get("Name", "")] = {
            c.get("Name", ""): (c.get("IPv4Address") or "").split("/", 1)[0]
            for c in conts.values() if c.get("IPv4Address")}
    return out


@dataclass
class Pair:
    service: str
    source: ContainerFacts
    network: str
    peer: str
    ip: str
    port: int

    @property
    def label(self) -> str:
        return f"{self.source.name} -> {self.peer} {self.ip}:{self.port} ({self.network})"


async def _probe(ctx: HostContext, pair: Pair, gate: asyncio.Semaphore
                 ) -> tuple[Pair, probe.Outcome, Evidence, Evidence | None]:
    async with gate:
        pid = int((pair.source.raw.get("State") or {}).get("Pid") or 0)
        res = await ctx.run(cc.netns_connect(pid, pair.ip, pair.port, PROBE_TIMEOUT,
                                             pair.source.name), timeout=PROBE_TIMEOUT + 20)
        seen = probe.outcome(res)
        ev = ctx.evidence(res, seen.message or "(connected)")
        host_ev = None
        if not seen.open:
            # The host does not go through the forward hook: if it gets in, forwarding is
            # what is blocked.
            h = await ctx.run(cc.host_connect(pair.ip, pair.port, PROBE_TIMEOUT),
                              timeout=PROBE_TIMEOUT + 20)
            host_seen = probe.outcome(h)
            host_ev = ctx.evidence(h, "from the host itself: " +
                                   ("connected" if host_seen.open else host_seen.message))
        return pair, seen, ev, host_ev


async def run(ctx: HostContext) -> list[Finding]:
    _, facts = await ctx.services()
    if not facts:
        return [ok(NAME, "-", "no service container on this host")]
    ls = await ctx.cached(dc.network_names())
    existing = set(ls.stdout.split())
    out: list[Finding] = []
    for p in ctx.placements:
        f = facts.get(p.container)
        if f is None:
            continue
        missing = [n for n in networks_of(f) if n not in existing and n not in SPECIAL]
        if missing:
            out.append(fail(
                NAME, p.service, f"{f.name} uses network {', '.join(missing)}, which does not "
                "exist: it cannot start again, and a release cannot recreate it",
                evidence=[ctx.evidence(ls)],
                fix=Fix("create it as it was (`docker network create NAME`, with the driver "
                        "and subnet it had; for compose, `docker-compose up` creates it)"),
                data={"missing": missing}))
    used = sorted({n for f in facts.values() if f.running for n in networks_of(f)}
                  & existing - SPECIAL)
    nets: dict[str, dict[str, str]] = {}
    if used:
        nets = members((await ctx.cached(dc.inspect_networks(used))).stdout)
    peers = await ctx.inspect([c for m in nets.values() for c in m])
    pairs: list[Pair] = []
    for p in ctx.placements:
        f = facts.get(p.container)
        if f is None or not f.running:
            continue
        for net in networks_of(f):
            for peer, ip in sorted(nets.get(net, {}).items()):
                pf = peers.get(peer)
                if peer == f.name or pf is None or not pf.running:
                    continue
                pairs.extend(Pair(p.service, f, net, peer, ip, port) for port in tcp_ports(pf))
    gate = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(_probe(ctx, x, gate) for x in pairs[:MAX_PROBES]))
    for p in ctx.placements:
        f = facts.get(p.container)
        if f is None or not f.running:
            continue
        mine = [r for r in results if r[0].service == p.service]
        good = [r for r in mine if r[1].open]
        for pair, seen, ev, host_ev in mine:
            if seen.open:
                continue
            data = {"from": pair.source.name, "to": pair.peer, "ip": pair.ip,
                    "port": pair.port, "network": pair.network, "result": seen.result}
            evidence = [ev] + ([host_ev] if host_ev else [])
            host_ok = host_ev is not None and host_ev.exit == 0
            data["host_reaches"] = host_ok
            why = (": the host itself gets through, so forwarded traffic is blocked (see the "
                   "firewall check)" if host_ok else "")
            if seen.result in BLOCKED:
                out.append(fail(NAME, p.service, f"{pair.label}: {seen.result}{why}",
                                evidence=evidence, data=data,
                                fix=Fix("look for a filter on the forward hook: `nft list "
                                        "ruleset` (the firewall check names leftovers)")))
            else:
                out.append(warn(NAME, p.service, f"{pair.label}: {seen.result}: the peer is "
                                "there but nothing listens on that port (is its app up?)",
                                evidence=evidence, data=data))
        if good:
            reached = ", ".join(f"{r[0].peer}:{r[0].port}" for r in good)
            out.append(ok(NAME, p.service, f"{f.name} reaches {reached}",
                          evidence=[r[2] for r in good[:3]],
                          data={"reached": [{"to": r[0].peer, "port": r[0].port,
                                             "network": r[0].network} for r in good]}))
        elif not mine:
            out.append(ok(NAME, p.service, f"{f.name}: no peer with an exposed port on "
                          f"{', '.join(networks_of(f)) or 'its networks'}",
                          data={"reached": []}))
    if len(pairs) > MAX_PROBES:
        out.append(warn(NAME, "-", f"only the first {MAX_PROBES} of {len(pairs)} "
                        "container-to-port paths were probed"))
    return out
