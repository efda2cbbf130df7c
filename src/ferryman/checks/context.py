"""One host as the checks see it: its services, and facts read once and shared by every
check that needs them (several checks look at the same `docker inspect` or `ss`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..config import Config
from ..docker import commands as dc
from ..docker.compose import compose_flavour
from ..docker.inspect import ContainerFacts, parse_containers
from ..hosts import HostPool, Placement
from ..redact import Redactor
from ..transport import Host, Result
from . import commands as cc
from .findings import Evidence, Finding
from .ss import Listener, parse_listeners

T = TypeVar("T")


class HostContext:
    def __init__(self, cfg: Config, pool: HostPool, env: str, label: str, *,
                 stamp: str, domain: str | None = None, tls_port: int = 443) -> None:
        self.cfg = cfg
        self.pool = pool
        self.env = env
        self.label = label
        self.host: Host = pool.host(env, label)
        # A Swarm's services run as tasks, not named containers: the swarm check reads them.
        self.placements: list[Placement] = [] if cfg.environments[env].swarm else [
            p for p in pool.placements(env) if p.host == label]
        self.stamp = stamp  # dated names for what --fix saves: 20260201-101500
        self.domain = domain
        self.tls_port = tls_port  # where --domain's certificate is served
        self.connect_seconds: float | None = None
        self.redactor = Redactor(cfg.secrets)
        self._once: dict[Any, asyncio.Future[Any]] = {}

    @property
    def own_address(self) -> str:
        return self.cfg.environments[self.env].own_address

    async def once(self, key: Any, make: Callable[[], Awaitable[T]]) -> T:
        """The value of `make()`, computed the first time any check asks for it."""
        if key not in self._once:
            self._once[key] = asyncio.ensure_future(make())
        return await self._once[key]

    async def run(self, argv: Sequence[str], timeout: float = 30) -> Result:
        return await self.host.run(argv, timeout=timeout)

    async def cached(self, argv: Sequence[str], timeout: float = 30) -> Result:
        return await self.once(("run", tuple(argv)), lambda: self.run(argv, timeout))

    def evidence(self, result: Result, output: str | None = None) -> Evidence:
        ev = Evidence.of(result, output)
        ev.output = self.redactor.text(ev.output)
        ev.command = self.redactor.text(ev.command)
        return ev

    def stamp_finding(self, finding: Finding) -> Finding:
        finding.env, finding.host = self.env, self.label
        return finding

    # --- facts shared between checks ------------------------------------------------

    async def docker_version(self) -> Result:
        return await self.cached(dc.docker_version())

    async def docker_usable(self) -> bool:
        return (await self.docker_version()).ok

    async def docker_info(self) -> tuple[Result, dict[str, Any]]:
        res = await self.cached(dc.docker_info())
        try:
            info = json.loads(res.stdout) if res.ok else {}
        except ValueError:
            info = {}
        return res, info if isinstance(info, dict) else {}

    async def services(self) -> tuple[Result | None, dict[str, ContainerFacts]]:
        """The service containers of this host that exist, by container name."""
        names = [p.container for p in self.placements]
        if not names:
            return None, {}
        res = await self.cached(dc.inspect_containers(names), timeout=60)
        return res, parse_containers(res.stdout)

    async def inspect(self, names: Sequence[str]) -> dict[str, ContainerFacts]:
        if not names:
            return {}
        res = await self.cached(dc.inspect_containers(sorted(set(names))), timeout=60)
        return parse_containers(res.stdout)

    async def all_containers(self) -> tuple[Result | None, dict[str, ContainerFacts]]:
        """Every container of the host, stopped ones too, but those a release set aside
        (NAME.ferryman-RELEASE, kept for a rollback), inspected once for every check."""
        ps = await self.cached(dc.all_containers())
        names = sorted({ln.partition("\t")[0].strip() for ln in ps.stdout.splitlines()}
                       - {""})
        names = [n for n in names if ".ferryman-" not in n]
        if not names:
            return None, {}
        res = await self.cached(dc.inspect_containers(names), timeout=60)
        return res, parse_containers(res.stdout)

    async def files_exist(self, paths: Sequence[str]) -> tuple[Result | None, dict[str, bool]]:
        if not paths:
            return None, {}
        res = await self.cached(dc.files_exist(sorted(set(paths))))
        return res, dc.parse_files_exist(res.stdout)

    async def compose_flavour(self) -> str | None:
        return await self.once("compose", lambda: compose_flavour(self.host))

    async def listeners(self) -> tuple[Result, list[Listener]]:
        res = await self.cached(cc.listeners())
        return res, parse_listeners(res.stdout) if res.ok else []

    async def ruleset(self) -> Result:
        return await self.cached(cc.nft_ruleset())

    async def firewalld(self) -> Result:
        return await self.cached(cc.firewalld_state())
