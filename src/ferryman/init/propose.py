"""From what every host runs to a proposed ferryman.yml: pure, each choice with its reason.

The first environment given is where releases come from (TEST): its running app containers
are the services. Stores (databases, search engines, object stores, queues, caches) are not
released, but stopped after the writers for a consistent snapshot; monitoring and management
containers are never stopped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..config.schema import SERVICE_NAME_RE, parse_address
from ..docker.compose import default_names
from ..guards import LOCAL_NAMES, host_of
from . import classify as cl
from .facts import HostFacts, Seen
from .read import HEALTH_PATHS
from .request import Request, label, loopback

PROD_NAMES = ("prod", "production", "prd", "live")
RELEASE_TAGS = ["v*"]


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


def _placed(facts: list[HostFacts]) -> list[Placed]:
    return [Placed(h.env, h.host, c, cl.role(c)) for h in facts for c in h.containers]


def _groups(apps: list[Placed]) -> list[Group]:
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


def _where(placed: Iterable[Placed]) -> str:
    return ", ".join(dict.fromkeys(p.host for p in placed))


# --- the proposal --------------------------------------------------------------------------


def propose(req: Request, facts: list[HostFacts]) -> Proposal:
    placed = _placed(facts)
    running = [p for p in placed if p.c.running]
    src = req.source
    out = Proposal("", "", [], req.identity_file, req.known_hosts)

    stopped: dict[str, list[Placed]] = {}
    for p in placed:
        if not p.c.running:
            stopped.setdefault(p.c.name, []).append(p)
    for name, where in stopped.items():
        said = ", ".join(f"{p.c.status} on {p.host}" for p in where)
        out.left_out.append(Item(name, f"{said}: only running containers are proposed"))
    apps = [p for p in running if p.role.kind == cl.APP]
    services, others = _services(req, apps, facts, out)
    out.services = services
    _data(req, running, services, others, facts, out)
    guards, named = _guards(req, running, services, facts, out)
    out.guards = guards
    out.envs = _envs(req, facts, named, services, running, out)
    out.project, out.project_why = _project(req, services)
    if not services:
        out.undecided.append(f"no app container runs on {src}: services is empty. Start the "
                             f"app on {src} (or give its environment first), then run init "
                             "again")
    return out


def _services(req: Request, apps: list[Placed], facts: list[HostFacts], out: Proposal
              ) -> tuple[list[ServiceEntry], list[Placed]]:
    """The services (apps running on the source), and the apps that run elsewhere only."""
    src = req.source
    hosts_of = {e.name: [label(h) for h in e.hosts] for e in req.envs}
    probes = {h.host: h.probes for h in facts}
    chosen: list[tuple[Group, str]] = []
    others: list[Placed] = []
    taken: set[str] = set()
    groups = sorted(_groups(apps), key=lambda g: (g.compose is not None, g.compose or (),
                                                 g.name))
    run_names = {g.name for g in groups if g.compose is None}
    for g in groups:
        if not g.on(src):
            where = ", ".join(sorted({p.env for p in g.placed}))
            out.undecided.append(
                f"{_title(g)} runs on {where} only, not on {src}: not proposed as a service "
                f"(a release from {src} could not carry it); it is stopped with the writers")
            others.extend(g.placed)
            continue
        key = g.compose[1] if g.compose else g.name
        if g.compose and (key in taken or key in run_names):
            key = f"{g.compose[0]}-{g.compose[1]}"
        if key in taken or not _valid_key(key):
            out.undecided.append(f"{_title(g)}: no service name fits ({key!r} is taken or "
                                 "not a valid name); add it by hand")
            continue
        taken.add(key)
        chosen.append((g, key))

    entries = []
    for g, key in chosen:
        envs = sorted({p.env for p in g.placed}, key=[e.name for e in req.envs].index)
        missing = [e.name for e in req.envs if e.name not in envs]
        how = (f"compose service {g.compose[1]} of project {g.compose[0]}" if g.compose
               else "started by docker run")
        why = f"{how}; runs on {_where(g.placed)}"
        if missing:
            why += (f"; not on {', '.join(missing)}: a release there creates it from "
                    f"{src}'s container (check its ports, volumes and networks fit there)")
        e = ServiceEntry(key, why)
        if g.compose:
            e.compose = g.compose
            e.group = f"compose project {g.compose[0]}" + (
                f" ({', '.join(g.on(src)[0].c.compose_files)})" if g.on(src)[0].c.compose_files
                else "")
            names = {p.c.name for p in g.placed}
            if len(names) == 1 and next(iter(names)) not in default_names(*g.compose):
                # Also found by its name where the labels are lost (recreated by docker run).
                e.container = next(iter(names))
        on_hosts = sorted({p.host for p in g.placed})
        every = sorted({h for env in envs for h in hosts_of[env]})
        if on_hosts != every:
            e.hosts = on_hosts
        if left := _health(e, g, src, probes):
            out.undecided.append(left)
        entries.append(e)
    return entries, others


def _title(g: Group) -> str:
    return (f"compose service {g.compose[0]}/{g.compose[1]}" if g.compose
            else f"container {g.name}")


def _valid_key(key: str) -> bool:
    return bool(re.fullmatch(SERVICE_NAME_RE, key))


def probe_bases(c: Seen) -> list[str]:
    """Where init asks a container without a HEALTHCHECK: its published ports, in order."""
    return list(dict.fromkeys(f"http://{p.probe_ip}:{p.host_port}"
                              for p in sorted(c.ports, key=lambda p: p.host_port)))


def probe_urls(c: Seen) -> list[str]:
    return [b + path for b in probe_bases(c) for path in HEALTH_PATHS]


def answered(code: int) -> bool:
    return 200 <= code < 400


def _health(e: ServiceEntry, g: Group, src: str, probes: dict[str, dict[str, int]]
            ) -> str | None:
    """Fills in the service's health; returns what is left to decide, if anything."""
    here = g.on(src)
    checked = [p for p in here if p.c.healthcheck]
    if checked:
        e.health_docker = True
        now = ", ".join(f"{p.c.health or 'no status yet'} on {p.host}" for p in checked)
        e.health_why = (f"the image's own HEALTHCHECK (Docker says: {now}); check that it "
                        "tests the app itself, not only that a process runs")
        return None
    for p in here:
        asked = probe_urls(p.c)
        for url in asked:
            code = probes.get(p.host, {}).get(url, 0)
            if answered(code):
                e.health_http = url
                elsewhere = [f"{q.host} (HTTP {probes.get(q.host, {}).get(url, 0) or 'none'})"
                             for q in g.placed if q is not p and q.c.ports
                             and not answered(probes.get(q.host, {}).get(url, 0))]
                e.health_why = (f"no HEALTHCHECK in the image; GET {url} answered {code} on "
                                f"{p.host}, read-only from the host. Check that it fails when "
                                "the app is broken (a page that always answers proves little)")
                if elsewhere:
                    e.health_why += f"; it did not answer on {', '.join(elsewhere)}"
                    return f"services.{e.key}.health: {url} did not answer on " + ", ".join(
                        elsewhere)
                return None
        if asked:
            ports = ", ".join(str(port.host_port) for port in p.c.ports)
            e.health_why = (f"no HEALTHCHECK in the image, and no GET of "
                            f"{', '.join(HEALTH_PATHS)} on its published ports ({ports}) "
                            f"answered on {p.host}: running is enough until you add "
                            "health.http")
            return (f"services.{e.key}.health: no HEALTHCHECK and no HTTP answer on ports "
                    f"{ports}; running counts as healthy until you set health")
    e.health_why = ("no HEALTHCHECK in the image and no published port to probe: running is "
                    "enough until you add health.http or health.docker")
    return (f"services.{e.key}.health: no HEALTHCHECK and no published port; running counts "
            "as healthy until you set health")


# --- data: what is copied, what is stopped -------------------------------------------------


def _data(req: Request, running: list[Placed], services: list[ServiceEntry],
          others: list[Placed], facts: list[HostFacts], out: Proposal) -> None:
    src = req.source
    key_of = _keys(running, services)
    business = [p for p in running if p.role.kind != cl.MONITOR]
    # Writers: the services (a compose service's key names its container on every host), then
    # apps that run outside the source environment.
    for s in services:
        out.stop.append(Item(s.key, "writer (a service): stopped first, so nothing changes the "
                                    "data while it is copied"))
    for name in dict.fromkeys(p.c.name for p in others):
        where = _where(p for p in others if p.c.name == name)
        out.stop.append(Item(name, f"writer (an app on {where} only): stopped first"))
    stores = sorted((p for p in business if p.role.store),
                    key=lambda p: (cl.STORE_ORDER.index(p.role.kind), p.c.name))
    seen_names = {i.value for i in out.stop}
    for p in stores:
        name = p.c.name
        if name in seen_names:
            continue
        seen_names.add(name)
        same = [q for q in stores if q.c.name == name]
        why = (f"{p.role.reason}: a store, stopped after the writers that use it, on "
               f"{_where(same)}")
        if p.c.compose and len({q.c.name for q in stores if q.c.compose == p.c.compose}) > 1:
            why += ("; compose names it differently on other hosts (v1 and v2): each name is "
                    "listed, a host stops the one it has")
        if p.role.kind == "database":
            why += ("; or keep it running and dump it live with data.dumps (postgres, mysql)")
        out.stop.append(Item(name, why))
    for p in running:
        if p.role.kind == cl.MONITOR and p.c.name not in {
                i.value for i in [*out.never_stop, *out.stop]}:
            where = _where(q for q in running if q.c.name == p.c.name)
            out.never_stop.append(Item(p.c.name, f"{p.role.reason}; on {where}"))

    info = {(h.host, path): i for h in facts for path, i in h.paths.items()}
    volumes: dict[str, list[Placed]] = {}
    paths: dict[str, tuple[list[Placed], str]] = {}
    left: dict[str, tuple[str, list[Placed]]] = {}
    for p in business:
        for m in p.c.mounts:
            use = cl.mount_use(m, info.get((p.host, m.source)))
            if use.verdict == cl.DATA and m.type == "volume":
                volumes.setdefault(m.source, []).append(p)
            elif use.verdict == cl.DATA:
                paths.setdefault(m.source, ([], use.why))[0].append(p)
            else:
                left.setdefault(m.source, (use.why, []))[1].append(p)
    for p in running:
        if p.role.kind == cl.MONITOR:
            for m in p.c.mounts:
                if m.type == "volume" and not m.anonymous and m.source not in volumes:
                    left.setdefault(m.source, ("volume of a monitoring container", []))[1].append(p)
    envs = [e.name for e in req.envs]
    for name, users in sorted(volumes.items()):
        on = sorted({p.env for p in users}, key=envs.index)
        why = (f"named volume of {_users(users, key_of)} "
               f"({', '.join(dict.fromkeys(p.role.kind for p in users))}) on {_where(users)}")
        if missing := [e for e in envs if e not in on]:
            why += (f"; absent on {', '.join(missing)}: a backup there fails until it exists "
                    "(a sync from another environment creates it)")
        out.volumes.append(Item(name, why))
    for path in sorted(paths):
        users, why = paths[path]
        outer = next((o for o in paths if o != path and path.startswith(o.rstrip("/") + "/")),
                     None)
        if outer:
            left[path] = (f"inside {outer}, which is copied whole", users)
            continue
        out.paths.append(Item(path, f"{why} by {_users(users, key_of)} on {_where(users)}; "
                                    "check that it holds data, not code or a cache"))
    for source, (why, users) in sorted(left.items()):
        out.left_out.append(Item(source, f"{why}; used by {_users(users, key_of)} on "
                                         f"{_where(users)}"))
    if src not in {p.env for p in business}:
        out.undecided.append(f"nothing runs on {src} that holds data: data is empty")


def _keys(placed: list[Placed], services: list[ServiceEntry]) -> dict[str, str]:
    """container name -> the key of its service, on every host."""
    return {p.c.name: s.key for p in placed for s in services if _is(p, s)}


def _users(users: list[Placed], key_of: dict[str, str]) -> str:
    return ", ".join(dict.fromkeys(key_of.get(p.c.name, p.c.name) for p in users))


# --- guards: config files that name an environment ----------------------------------------


@dataclass
class Hit:
    """A value in a config file on a host that names an environment's address."""

    env: str  # where the file is
    host: str
    file: str
    key: list[str | int]
    value: str
    names: str  # the environment it names
    format: str  # json or yaml


def walk(doc: Any, path: list[str | int] | None = None) -> Iterator[tuple[list[str | int], str]]:
    """Every string leaf of a JSON or YAML document with its key path."""
    path = path or []
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from walk(v, [*path, str(k)])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from walk(v, [*path, i])
    elif isinstance(doc, str):
        yield path, doc


def parse_doc(name: str, text: str) -> tuple[str, Any] | None:
    if name.endswith(".json"):
        try:
            return "json", json.loads(text)
        except ValueError:
            return None
    try:
        return "yaml", YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError):
        return None


def address_map(req: Request, facts: list[HostFacts]) -> dict[str, str]:
    """address -> the environment it belongs to: --address, SSH hostnames, the hosts' own
    addresses (container bridges left out)."""
    owners: dict[str, set[str]] = {}
    for e in req.envs:
        found = [e.address] if e.address else []
        found += [parse_address(h.address).hostname for h in e.hosts]
        found += [a for h in facts if h.env == e.name for a in h.addresses]
        for a in found:
            if a and not loopback(a) and a.lower() not in LOCAL_NAMES:
                owners.setdefault(a.lower(), set()).add(e.name)
    # An address two environments share (one machine for both) tells them apart for nobody.
    return {a: next(iter(envs)) for a, envs in owners.items() if len(envs) == 1}


def find_hits(req: Request, facts: list[HostFacts], mounted: set[tuple[str, str]]
              ) -> list[Hit]:
    addresses = address_map(req, facts)
    hits = []
    for h in facts:
        for path, info in h.paths.items():
            if (h.host, path) not in mounted:
                continue
            for name, text in sorted(info.files.items()):
                parsed = parse_doc(name, text)
                if parsed is None:
                    continue
                fmt, doc = parsed
                for key, value in walk(doc):
                    try:
                        host = host_of(value.strip())
                    except ValueError:
                        continue
                    if host in addresses:
                        hits.append(Hit(h.env, h.host, name, key, value, addresses[host], fmt))
    return hits


def _guards(req: Request, running: list[Placed], services: list[ServiceEntry],
            facts: list[HostFacts], out: Proposal) -> tuple[list[GuardEntry], list[Hit]]:
    key_of = _keys(running, services)
    business = [p for p in running if p.role.kind != cl.MONITOR]
    mounted = {(p.host, m.source) for p in business for m in p.c.mounts if m.type == "bind"}
    hits = find_hits(req, facts, mounted)
    envs = [e.name for e in req.envs]
    where_file: dict[str, set[str]] = {}
    for h in facts:
        for info in h.paths.values():
            for name in info.files:
                where_file.setdefault(name, set()).add(h.env)
    grouped: dict[tuple[str, tuple[str | int, ...]], list[Hit]] = {}
    for hit in hits:
        grouped.setdefault((hit.file, tuple(hit.key)), []).append(hit)
    guards = []
    for (file, key), found in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        dotted = ".".join(str(k) for k in key)
        said = "; ".join(_said(h) for h in found)
        if found[0].format != "json":
            out.undecided.append(f"{file} ({found[0].format}) key {dotted}: {said}. Guards "
                                 "read JSON only: check this value by hand after each release "
                                 "or data copy")
            continue
        if any(isinstance(k, int) for k in key) or any(
                "." in str(k) or not str(k).strip() or any(ch.isspace() for ch in str(k))
                for k in key):
            out.undecided.append(f"{file} key {dotted}: {said}. A guard's key is a path of "
                                 "mapping keys without dots or spaces: this one cannot be "
                                 "guarded; check it by hand")
            continue
        users = [p for p in business for m in p.c.mounts if m.type == "bind"
                 and (file == m.source or file.startswith(m.source.rstrip("/") + "/"))]
        restart = [s.key for s in services if s.key in {key_of.get(p.c.name) for p in users}]
        has = sorted(where_file.get(file, set()), key=envs.index)
        polluted = [h for h in found if h.names != h.env]
        why = f"{said}"
        if polluted:
            why += (". Cross-environment pollution (source note 000): the guard rewrites it "
                    "to name its own environment at the next release or data copy there "
                    "(`ferryman doctor` shows it now)")
        else:
            why += ". Each environment's value names itself: the guard keeps it so"
        if restart:
            why += "; restart: the services that mount it"
        writable = sorted({m.source for p in users for m in p.c.mounts if m.type == "bind"
                           and m.rw and file.startswith(m.source.rstrip("/") + "/")})
        if writable:
            why += (f". It lies in a folder the app writes to ({', '.join(writable)}): check "
                    "that it is configuration, not data")
        guards.append(GuardEntry(file, dotted, why, restart,
                                 has if has != envs else None))
    return guards, hits


def _said(h: Hit) -> str:
    whose = "itself" if h.names == h.env else f"{h.names}, not {h.env}"
    return f"on {h.host} it is {h.value!r}, naming {whose}"


# --- environments, policy, project ---------------------------------------------------------


def _envs(req: Request, facts: list[HostFacts], hits: list[Hit], services: list[ServiceEntry],
          running: list[Placed], out: Proposal) -> list[EnvEntry]:
    prod = next((e.name for e in req.envs if e.name in PROD_NAMES), None)
    entries = []
    for e in req.envs:
        entry = EnvEntry(e.name, [HostEntry(h.address, h.name) for h in e.hosts])
        first = parse_address(e.hosts[0].address).hostname
        own = {a for h in facts if h.env == e.name for a in h.addresses}
        named = [h for h in hits if h.names == e.name]
        if e.address:
            entry.address = e.address
            entry.address_why = "given with --address"
        elif (own_named := [h for h in named if host_of(h.value) in own
                            and host_of(h.value) != first.lower()]):
            entry.address = host_of(own_named[0].value)
            entry.address_why = (f"guessed: the config files name it ({own_named[0].file} "
                                 f"{'.'.join(map(str, own_named[0].key))}), and guards compare "
                                 "values with this address; check it is how others reach "
                                 f"{e.name}")
        elif loopback(first):
            hosts = [h for h in facts if h.env == e.name and h.addresses]
            if hosts:
                entry.address = hosts[0].addresses[0]
                entry.address_why = (f"guessed: the first address of "
                                     f"{hosts[0].host} ({first} is how this machine reaches "
                                     f"it); set it to the address config files of {e.name} "
                                     "should name, or give --address")
            out.undecided.append(
                f"environments.{e.name}.address: {e.name} is reached at {first}, which says "
                "nothing about how others see it; "
                + ("check the guessed address" if hosts else
                   "set it to the address its config files should name (guards compare "
                   "with it)"))
        if e.name == prod:
            entry.allowed_tags = list(RELEASE_TAGS)
            entry.confirm = True
            tags = {f"{s.key}: {p.c.image}" for s in services for p in running
                    if p.env == req.source and _is(p, s)}
            bad = sorted(t for t in tags if not any(
                fnmatchcase(_tag(t.split(": ", 1)[1]), g) for g in RELEASE_TAGS))
            entry.policy_why = (f"{e.name} takes release tags only (v1.2.3) and asks before "
                                "it changes (source note 004)")
            if bad:
                entry.policy_why += (f". {req.source} runs {', '.join(bad)}: a release to "
                                     f"{e.name} is refused until it runs a v* tag; change "
                                     "allowed_tags if your release tags look different")
                out.undecided.append(f"{req.source} runs images without a v* tag "
                                     f"({', '.join(bad)}): a release to {e.name} is refused "
                                     "until they are tagged for release, or allowed_tags "
                                     "changes")
        entries.append(entry)
    if prod is None and len(req.envs) > 1:
        out.undecided.append("no environment is named prod: no policy proposed; give the one "
                             "your users see allowed_tags and confirm")
    return entries


def _is(p: Placed, s: ServiceEntry) -> bool:
    if s.compose and p.c.compose == s.compose:
        return True
    return p.c.name == (s.container or s.key)


def _tag(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _project(req: Request, services: list[ServiceEntry]) -> tuple[str, str]:
    if req.project:
        return req.project, "given with --project"
    projects = [s.compose[0] for s in services if s.compose]
    if projects:
        best = max(dict.fromkeys(projects), key=projects.count)
        of = ", ".join(s.key for s in services if s.compose and s.compose[0] == best)
        return best, (f"guessed: the compose project of {of}"
                      "; it names ferryman's state on the servers (/var/lib/ferryman/PROJECT), "
                      "so keep it once releases are recorded")
    name = services[0].key if services else "app"
    return name, ("guessed from the first service; it names ferryman's state on the servers "
                  "(/var/lib/ferryman/PROJECT), so keep it once releases are recorded")


def data_is_empty(p: Proposal) -> bool:
    return not (p.volumes or p.paths or p.stop or p.never_stop)

