"""The data section: which volumes and folders are copied, which containers stop (writers
first, stores last) and which never do. Pure."""

from __future__ import annotations

from . import classify as cl
from .facts import HostFacts
from .proposal import Item, Placed, Proposal, ServiceEntry, service_keys, users_of, where
from .request import Request


def plan_data(req: Request, running: list[Placed], services: list[ServiceEntry],
              others: list[Placed], facts: list[HostFacts], out: Proposal) -> None:
    src = req.source
    key_of = service_keys(running, services)
    business = [p for p in running if p.role.kind != cl.MONITOR]
    # Writers: the services (a compose service's key names its container on every host), then
    # apps that run outside the source environment.
    for s in services:
        out.stop.append(Item(s.key, "writer (a service): stopped first, so nothing changes the "
                                    "data while it is copied"))
    for name in dict.fromkeys(p.c.name for p in others):
        on = where(p for p in others if p.c.name == name)
        out.stop.append(Item(name, f"writer (an app on {on} only): stopped first"))
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
               f"{where(same)}")
        if p.c.compose and len({q.c.name for q in stores if q.c.compose == p.c.compose}) > 1:
            why += ("; compose names it differently on other hosts (v1 and v2): each name is "
                    "listed, a host stops the one it has")
        if p.role.kind == "database":
            why += ("; or keep it running and dump it live with data.dumps (postgres, mysql)")
        out.stop.append(Item(name, why))
    for p in running:
        if p.role.kind == cl.MONITOR and p.c.name not in {
                i.value for i in [*out.never_stop, *out.stop]}:
            on = where(q for q in running if q.c.name == p.c.name)
            out.never_stop.append(Item(p.c.name, f"{p.role.reason}; on {on}"))

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
        why = (f"named volume of {users_of(users, key_of)} "
               f"({', '.join(dict.fromkeys(p.role.kind for p in users))}) on {where(users)}")
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
        out.paths.append(Item(path, f"{why} by {users_of(users, key_of)} on {where(users)}; "
                                    "check that it holds data, not code or a cache"))
    for source, (why, users) in sorted(left.items()):
        out.left_out.append(Item(source, f"{why}; used by {users_of(users, key_of)} on "
                                         f"{where(users)}"))
    if src not in {p.env for p in business}:
        out.undecided.append(f"nothing runs on {src} that holds data: data is empty")

