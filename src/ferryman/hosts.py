"""Hosts of the environments in ferryman.yml, connected on demand and closed together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .config import Config
from .config.schema import HostSpec, Service, parse_address
from .docker import compose as dcompose
from .errors import BadInput, PreconditionFailed
from .events import EventBus, ObservedHost
from .transport import Host, LocalHost, SshHost, SshTarget, TransportError


@dataclass(frozen=True)
class Placement:
    """One service on one host of one environment."""

    env: str
    host: str
    service: str
    container: str


def target_for(cfg: Config, spec: HostSpec) -> SshTarget:
    accept = spec.accept_unknown_host_key
    if accept is None:
        accept = cfg.ssh.accept_unknown_hosts
    jump = None
    if spec.jump:
        # The jump host is reached with the same key and trust settings as the host behind it.
        hop = parse_address(spec.jump, allow_local=False)
        jump = SshTarget(
            label=f"{spec.label} (jump {hop.hostname})", hostname=hop.hostname, port=hop.port,
            user=hop.user, identity_file=spec.identity_file,
            known_hosts=spec.known_hosts or cfg.ssh.known_hosts, accept_unknown_host_key=accept,
            connect_timeout=cfg.ssh.connect_timeout, **_keepalive(cfg),
        )
    return SshTarget(
        label=spec.label,
        hostname=spec.hostname,
        port=spec.port,
        user=spec.user,
        identity_file=spec.identity_file,
        password=spec.password.get_secret_value() if spec.password else None,
        known_hosts=spec.known_hosts or cfg.ssh.known_hosts,
        accept_unknown_host_key=accept,
        connect_timeout=cfg.ssh.connect_timeout,
        **_keepalive(cfg),
        jump=jump,
    )


def _keepalive(cfg: Config) -> dict[str, float]:
    return {"keepalive_interval": cfg.ssh.keepalive_interval,
            "keepalive_count_max": cfg.ssh.keepalive_count_max}


HostFactory = Callable[[str, HostSpec], Host]  # (environment, host spec) -> its Host


class HostPool:
    """Opens each host once per run; every command of the run reuses that connection."""

    def __init__(self, cfg: Config, bus: EventBus | None = None,
                 make_host: HostFactory | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        # Tests give hosts that answer from captured outputs; by default, real connections.
        self._make_host = make_host or self._connect
        self._hosts: dict[tuple[str, str], Host] = {}
        # (env, host) -> service -> container, for services named by compose labels
        self._named: dict[tuple[str, str], dict[str, str]] = {}
        self._resolving: dict[str, asyncio.Future[None]] = {}
        # Readers that must not wait on a slow host (the dashboard) set a deadline here.
        self.read_timeout: float | None = None

    def _connect(self, env: str, spec: HostSpec) -> Host:
        if spec.is_local:
            return LocalHost(spec.label, self.cfg.ssh.command_timeout)
        return SshHost(target_for(self.cfg, spec), self.cfg.ssh.command_timeout)

    def env(self, name: str):  # type: ignore[no-untyped-def]
        try:
            return self.cfg.environments[name]
        except KeyError:
            known = ", ".join(self.cfg.environments) or "none"
            raise BadInput(f"unknown environment '{name}' (ferryman.yml has: {known})") from None

    def host(self, env: str, label: str) -> Host:
        key = (env, label)
        if key not in self._hosts:
            spec = next((h for h in self.env(env).hosts if h.label == label), None)
            if spec is None:
                raise BadInput(f"environment '{env}' has no host '{label}'")
            inner = self._make_host(env, spec)
            self._hosts[key] = ObservedHost(inner, self.bus) if self.bus else inner
        return self._hosts[key]

    def hosts(self, env: str) -> list[tuple[str, Host]]:
        return [(spec.label, self.host(env, spec.label)) for spec in self.env(env).hosts]

    def placements(self, env: str, services: list[str] | None = None) -> list[Placement]:
        """Where each service runs in env: every host unless the service names its hosts."""
        self.env(env)
        chosen = services or list(self.cfg.services)
        unknown = [s for s in chosen if s not in self.cfg.services]
        if unknown:
            known = ", ".join(self.cfg.services) or "none"
            raise BadInput(f"unknown service {', '.join(unknown)} (ferryman.yml has: {known})")
        out = []
        for name in chosen:
            svc = self.cfg.services[name]
            for spec in self.env(env).hosts:
                if svc.hosts is None or spec.label in svc.hosts:
                    out.append(Placement(env, spec.label, name, self._container(env, spec, svc)))
        return out

    def _container(self, env: str, spec: HostSpec, svc: Service) -> str:
        if svc.compose is None:
            return svc.container_name
        named = self._named.get((env, spec.label))
        if named is None:
            raise RuntimeError(f"{svc.name} is named by compose labels: "
                               f"`await pool.resolve({env!r})` before its placements")
        return named[svc.name]

    async def resolve(self, env: str) -> None:
        """Finds on each host of `env` the container of every service named by compose
        project and service (`services.X.compose`); one `docker ps` per host, once per run
        (callers that ask at the same time share it).

        A host that cannot be read keeps the fallback names: the next command there fails
        and says why.
        """
        self.env(env)
        if env not in self._resolving:
            self._resolving[env] = asyncio.ensure_future(self._resolve(env))
        await self._resolving[env]

    async def _resolve(self, env: str) -> None:
        async def one(spec: HostSpec, svcs: list[Service]) -> None:
            listing = None
            if not svcs:
                self._named[(env, spec.label)] = {}
                return
            try:
                res = await asyncio.wait_for(
                    self.host(env, spec.label).run(dcompose.list_containers(), timeout=60),
                    self.read_timeout)
                listing = dcompose.parse_listing(res.stdout) if res.ok else None
            except (TransportError, TimeoutError):
                pass
            self._named[(env, spec.label)] = locate_services(svcs, listing, spec.label)

        await asyncio.gather(*(
            one(spec, [s for s in self.cfg.services.values()
                       if s.compose is not None and s.runs_on(spec)])
            for spec in self.env(env).hosts))

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self._hosts.values()), return_exceptions=True)
        self._hosts.clear()


def locate_services(services: list[Service], listing: list[dcompose.Listed] | None,
                    host: str) -> dict[str, str]:
    """service -> container on one host, for services named by compose labels. Without a
    listing, or where no container carries the labels, the first that exists of `container`
    and compose's own names (v2, v1); where none exists (a bootstrap), `container` or the v2
    name."""
    out = {}
    for svc in services:
        assert svc.compose is not None
        project, service = svc.compose.project, svc.compose.service
        fallbacks = ([svc.container] if svc.container else []) + dcompose.default_names(
            project, service)
        found = None
        if listing is not None:
            try:
                found = dcompose.locate(listing, project, service, fallbacks)
            except dcompose.AmbiguousService as exc:
                raise PreconditionFailed(
                    f"{svc.name} on {host}: {exc}",
                    hint=f"name the container with services.{svc.name}.container instead "
                         "of compose") from None
        out[svc.name] = found or fallbacks[0]
    return out


def by_host(placements: list[Placement]) -> Iterator[tuple[tuple[str, str], list[Placement]]]:
    groups: dict[tuple[str, str], list[Placement]] = {}
    for p in placements:
        groups.setdefault((p.env, p.host), []).append(p)
    yield from groups.items()


@contextlib.asynccontextmanager
async def open_pool(cfg: Config, bus: EventBus | None = None):  # type: ignore[no-untyped-def]
    pool = HostPool(cfg, bus)
    try:
        yield pool
    finally:
        await pool.close()
