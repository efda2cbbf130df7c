"""What a Swarm environment runs: per service, tasks running/desired, tasks rejected and
why, the update's state, and the eligible nodes that lack the service's image."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..docker import images as di
from ..hosts import HostPool
from ..transport import TransportError
from . import commands as sc
from . import facts as sf
from .facts import Node, Service, Task
from .release import manager_label, node_host


@dataclass
class ServiceView:
    service: str  # ferryman's name
    swarm: Service
    tasks: list[Task]
    lacking: dict[str, str] = field(default_factory=dict)  # node -> why it cannot run it

    @property
    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.desired == "running" and t.state == "running"]

    @property
    def rejected(self) -> list[Task]:
        """Tasks that never started (Rejected / Failed), newest first as Swarm lists them."""
        return [t for t in self.tasks if t.state in ("rejected", "failed") and t.error]

    def to_dict(self) -> dict[str, Any]:
        s = self.swarm
        return {"service": self.service, "swarm_service": s.name, "image": s.image,
                "desired": s.replicas, "running": len(self.running),
                "running_on": sorted({t.node for t in self.running}),
                "update": {"state": s.update_state, "message": s.update_message},
                "rejected": [{"node": t.node, "task": t.name, "state": t.current,
                              "error": t.error} for t in self.rejected],
                "lacking_image": self.lacking}


@dataclass
class SwarmView:
    env: str
    manager: str
    nodes: list[Node] = field(default_factory=list)
    services: list[ServiceView] = field(default_factory=list)
    error: str | None = None

    @property
    def unwell_nodes(self) -> list[Node]:
        return [n for n in self.nodes if not n.up or n.availability != "active"]

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "manager": self.manager, "error": self.error,
                "nodes": [{"hostname": n.hostname, "role": n.role, "state": n.state,
                           "availability": n.availability, "addr": n.addr}
                          for n in self.nodes],
                "services": [s.to_dict() for s in self.services]}


async def images_on(pool: HostPool, env: str, label: str, refs: list[str]) -> dict[str, str]:
    """ref -> image id on one node (absent refs are left out)."""
    res = await pool.host(env, label).run(di.inspect_images(refs), timeout=60)
    out: dict[str, str] = {}
    for img in sf.json_list(res.stdout):
        for tag in img.get("RepoTags") or []:
            out[tag] = img.get("Id", "")
    return out


async def lacking_nodes(cfg: Config, pool: HostPool, env: str, nodes: list[Node],
                        svc: Service) -> dict[str, str]:
    """Ready nodes the operator's placement allows that do not hold the service's image."""
    out: dict[str, str] = {}
    targets = [(n, node_host(cfg, env, n)) for n in nodes if n.up and sf.matches(n, svc.placement)]

    async def one(node: Node, label: str | None) -> None:
        if label is None:
            out[node.hostname] = f"no SSH address under environments.{env}.hosts"
            return
        try:
            held = await images_on(pool, env, label, [svc.image])
        except TransportError as exc:
            out[node.hostname] = f"unreachable: {exc}"
            return
        if svc.image not in held:
            out[node.hostname] = f"lacks {svc.image}"

    await asyncio.gather(*(one(n, label) for n, label in targets))
    return dict(sorted(out.items()))


async def read_status(cfg: Config, pool: HostPool, env: str) -> SwarmView:
    swarm = cfg.environments[env].swarm
    assert swarm is not None
    label = manager_label(cfg, env)
    view = SwarmView(env, label)
    mgr = pool.host(env, label)
    try:
        ids = await mgr.run(sc.node_ids(), timeout=60)
        if not ids.ok:
            view.error = f"{label} is not a Swarm manager: {ids.stderr.strip()}"
            return view
        view.nodes = sf.parse_nodes((await mgr.run(sc.inspect_nodes(ids.stdout.split()),
                                                   timeout=60)).stdout)
        names = {s: swarm.service_name(s) for s in cfg.services}
        found = sf.parse_services((await mgr.run(sc.inspect_services(list(names.values())),
                                                 timeout=60)).stdout)
        for service, name in names.items():
            svc = found.get(name)
            if svc is None:
                continue
            tasks = sf.parse_tasks((await mgr.run(sc.service_tasks(name), timeout=60)).stdout)
            view.services.append(ServiceView(service, svc, tasks, await lacking_nodes(
                cfg, pool, env, view.nodes, svc)))
    except TransportError as exc:
        view.error = str(exc)
    return view
