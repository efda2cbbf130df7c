"""What a proposal is made of: each value with why it was chosen, and where every container
runs. Shared by the parts of propose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import classify as cl
from .facts import HostFacts, Seen


@dataclass
class Item:
    """A value of a list (a volume, a path, a container to stop) and why it is there."""

    value: str
    why: str


@dataclass
class HostEntry:
    address: str
    name: str | None = None


@dataclass
class EnvEntry:
    name: str
    hosts: list[HostEntry]
    address: str | None = None
    address_why: str = ""
    allowed_tags: list[str] = field(default_factory=list)
    confirm: bool = False
    policy_why: str = ""


@dataclass
class ServiceEntry:
    key: str
    why: str
    container: str | None = None
    compose: tuple[str, str] | None = None
    hosts: list[str] | None = None
    health_http: str | None = None
    health_docker: bool = False
    health_why: str = ""
    group: str = ""  # the compose project's header, "" for docker run


@dataclass
class GuardEntry:
    file: str
    key: str
    why: str
    restart: list[str] = field(default_factory=list)
    environments: list[str] | None = None


@dataclass
class Proposal:
    project: str
    project_why: str
    envs: list[EnvEntry]
    identity_file: str | None = None
    known_hosts: str | None = None
    services: list[ServiceEntry] = field(default_factory=list)
    volumes: list[Item] = field(default_factory=list)
    paths: list[Item] = field(default_factory=list)
    stop: list[Item] = field(default_factory=list)
    never_stop: list[Item] = field(default_factory=list)
    guards: list[GuardEntry] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)  # what the operator must decide
    left_out: list[Item] = field(default_factory=list)  # seen, and left out on purpose


# --- where each container is ---------------------------------------------------------------


@dataclass
class Placed:
    env: str
    host: str
    c: Seen
    role: cl.Role


@dataclass
class Group:
    """One app as it runs across hosts: one compose service, or one container name."""

    compose: tuple[str, str] | None
    name: str
    placed: list[Placed] = field(default_factory=list)

    def on(self, env: str) -> list[Placed]:
        return [p for p in self.placed if p.env == env]

    @property
    def names(self) -> list[str]:
        return sorted({p.c.name for p in self.placed})


def placed_on(facts: list[HostFacts]) -> list[Placed]:
    return [Placed(h.env, h.host, c, cl.role(c)) for h in facts for c in h.containers]


def app_groups(apps: list[Placed]) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for p in sorted(apps, key=lambda p: p.c.compose is None):  # compose ones first
        if p.c.compose:
            key: tuple[str, ...] = ("compose", *p.c.compose)
        else:
            # A compose container recreated by `docker run` keeps its name, not its labels.
            owner = next((g for g in groups.values() if g.compose and p.c.name in g.names),
                         None)
            if owner is not None:
                owner.placed.append(p)
                continue
            key = ("name", p.c.name)
        groups.setdefault(key, Group(p.c.compose, p.c.name)).placed.append(p)
    return list(groups.values())


def where(placed: Iterable[Placed]) -> str:
    return ", ".join(dict.fromkeys(p.host for p in placed))



def service_keys(placed: list[Placed], services: list[ServiceEntry]) -> dict[str, str]:
    """container name -> the key of its service, on every host."""
    return {p.c.name: s.key for p in placed for s in services if is_service(p, s)}


def users_of(users: list[Placed], key_of: dict[str, str]) -> str:
    return ", ".join(dict.fromkeys(key_of.get(p.c.name, p.c.name) for p in users))



def is_service(p: Placed, s: ServiceEntry) -> bool:
    if s.compose and p.c.compose == s.compose:
        return True
    return p.c.name == (s.container or s.key)

