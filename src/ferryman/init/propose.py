"""From what every host runs to a proposed ferryman.yml: pure, each choice with its reason.

The first environment given is where releases come from (TEST): its running app containers
are the services. Stores (databases, search engines, object stores, queues, caches) are not
released, but stopped after the writers for a consistent snapshot (plan_data); monitoring and
management containers are never stopped. Config files naming an environment get guards
(plan_guards).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from ..config.schema import SERVICE_NAME_RE, parse_address
from ..docker.compose import default_names
from ..guards import host_of
from . import classify as cl
from .facts import HostFacts, Seen
from .plan_data import plan_data
from .plan_guards import Hit, plan_guards
from .proposal import (
    EnvEntry,
    Group,
    HostEntry,
    Item,
    Placed,
    Proposal,
    ServiceEntry,
    app_groups,
    is_service,
    placed_on,
    where,
)
from .read import HEALTH_PATHS
from .request import Request, label, loopback

PROD_NAMES = ("prod", "production", "prd", "live")
RELEASE_TAGS = ["v*"]

# --- the proposal --------------------------------------------------------------------------


def propose(req: Request, facts: list[HostFacts]) -> Proposal:
    placed = placed_on(facts)
    running = [p for p in placed if p.c.running]
    src = req.source
    out = Proposal("", "", [], req.identity_file, req.known_hosts)

    stopped: dict[str, list[Placed]] = {}
    for p in placed:
        if not p.c.running:
            stopped.setdefault(p.c.name, []).append(p)
    for name, found in stopped.items():
        said = ", ".join(f"{p.c.status} on {p.host}" for p in found)
        out.left_out.append(Item(name, f"{said}: only running containers are proposed"))
    apps = [p for p in running if p.role.kind == cl.APP]
    services, others = _services(req, apps, facts, out)
    out.services = services
    plan_data(req, running, services, others, facts, out)
    guards, named = plan_guards(req, running, services, facts, out)
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
    groups = sorted(app_groups(apps), key=lambda g: (g.compose is not None, g.compose or (),
                                                 g.name))
    run_names = {g.name for g in groups if g.compose is None}
    for g in groups:
        if not g.on(src):
            envs_on = ", ".join(sorted({p.env for p in g.placed}))
            out.undecided.append(
                f"{_title(g)} runs on {envs_on} only, not on {src}: not proposed as a service "
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
        why = f"{how}; runs on {where(g.placed)}"
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
                    if p.env == req.source and is_service(p, s)}
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

