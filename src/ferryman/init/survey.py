"""Reads every host of the request into facts: its containers, its addresses, the config files
under the business containers' bind mounts, and which published ports answer HTTP. Only reads.
"""

from __future__ import annotations

import asyncio

from ..docker.inspect import parse_containers
from ..errors import PreconditionFailed
from ..hosts import HostPool
from ..transport import Host
from . import classify as cl
from . import read
from .facts import HostFacts, Seen, worth_reading
from .propose import probe_bases
from .request import Request, label

MAX_PROBED_PORTS = 8  # per container: a port range published whole would take minutes


def seen(stdout: str) -> list[Seen]:
    """The containers worth proposing from `docker inspect` of every container."""
    return [Seen.of(f) for f in parse_containers(stdout).values() if worth_reading(f)]


def bind_sources(containers: list[Seen]) -> list[str]:
    """Host paths bind-mounted into the business containers (not into monitoring ones)."""
    return sorted({m.source for c in containers if cl.role(c).kind != cl.MONITOR
                   for m in c.mounts if m.type == "bind" and not cl.system_path(m.source)})


def to_probe(containers: list[Seen]) -> list[str]:
    """Published ports of running apps without a HEALTHCHECK of their own."""
    bases = [b for c in containers
             if c.running and not c.healthcheck and cl.role(c).kind == cl.APP
             for b in probe_bases(c)[:MAX_PROBED_PORTS]]
    return list(dict.fromkeys(bases))


async def read_host(host: Host, env: str, name: str, address: str) -> HostFacts:
    res = await host.run(read.inspect_all(), timeout=120)
    if not res.ok and not res.stdout.strip():
        raise PreconditionFailed(
            f"{name}: cannot list its containers: {res.stderr.strip() or res.short_command}",
            hint="`ferryman check` says whether Docker answers there and to whom",
            host=name, evidence=res.stderr)
    facts = HostFacts(env, name, address, seen(res.stdout))
    addrs = await host.run(read.own_addresses(), timeout=30)
    if addrs.ok:
        facts.addresses = read.parse_own_addresses(addrs.stdout)
    paths = bind_sources(facts.containers)
    bases = to_probe(facts.containers)
    files, probes = await asyncio.gather(
        host.run(read.config_files(paths), timeout=120) if paths else _nothing(),
        host.run(read.http_status(bases), timeout=30 + 10 * len(bases)) if bases
        else _nothing())
    if files is not None:
        facts.paths = read.parse_config_files(paths, files.stdout)
    if probes is not None:
        facts.probes = read.parse_http_status(probes.stdout)
    return facts


async def _nothing() -> None:
    return None


async def survey(pool: HostPool, req: Request) -> list[HostFacts]:
    """Every host of every environment, read at once."""
    jobs = [read_host(pool.host(e.name, label(h)), e.name, label(h), h.address)
            for e in req.envs for h in e.hosts]
    return list(await asyncio.gather(*jobs))
