"""What runs where: per environment, host and service, and the image drift between them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..docker import commands as dc
from ..docker.composefile import full_ref, named_by_project, project_files
from ..docker.inspect import ContainerFacts, parse_containers, short_id
from ..hosts import HostPool, Placement, by_host
from ..state import state_dir
from ..transport import TransportError


@dataclass
class ServiceStatus:
    place: Placement
    facts: ContainerFacts | None = None
    compose_files: dict[str, bool] = field(default_factory=dict)
    # The image the project's own files (.env resolved) name: what a plain `compose up -d`
    # would start; None when they name none or cannot be read.
    files_name: str | None = None
    error: str | None = None  # the host could not be read

    @property
    def files_disagree(self) -> bool:
        f = self.facts
        return bool(f and self.files_name and full_ref(self.files_name) != full_ref(
            f.image_ref))

    @property
    def state(self) -> str:
        if self.error:
            return "unreachable"
        return self.facts.status if self.facts else "absent"

    @property
    def mode(self) -> str:
        if self.facts is None:
            return "absent"
        return self.facts.mode

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        out: dict[str, Any] = {
            "env": self.place.env, "host": self.place.host, "service": self.place.service,
            "container": self.place.container, "state": self.state, "mode": self.mode,
        }
        if self.error:
            out["error"] = self.error
        if f is None:
            return out
        out.update(
            health=f.health, restarts=f.restarts, image=f.image_ref, image_id=f.image_id,
            started_at=f.started_at, exit_code=f.exit_code,
        )
        if f.compose:
            out["compose"] = {
                "project": f.compose.project, "service": f.compose.service,
                "working_dir": f.compose.working_dir,
                "config_files": [{"path": p, "exists": self.compose_files.get(p, False)}
                                 for p in f.compose.config_files],
                "files_name": self.files_name, "files_disagree": self.files_disagree,
            }
        return out


async def read_host(pool: HostPool, env: str, host: str,
                     places: list[Placement]) -> list[ServiceStatus]:
    h = pool.host(env, host)
    try:
        res = await h.run(dc.inspect_containers([p.container for p in places]), timeout=60)
        facts = parse_containers(res.stdout)
        files = sorted({f for x in facts.values() if x.compose for f in x.compose.config_files})
        state = state_dir(pool.cfg.project)
        envs = sorted({project_files(x.compose, state)[1] for x in facts.values()
                       if x.compose and x.compose.working_dir})
        texts: dict[str, str | None] = {}
        if files:
            texts = dc.parse_read_files((await h.run(dc.read_files(files + envs),
                                                     timeout=30)).stdout)
    except (TransportError, ValueError) as exc:
        return [ServiceStatus(p, error=str(exc)) for p in places]
    out = []
    for p in places:
        f = facts.get(p.container)
        s = ServiceStatus(p, f)
        if f and f.compose:
            s.compose_files = {k: texts.get(k) is not None for k in f.compose.config_files}
            named = named_by_project(f.compose, texts, state)
            s.files_name = named[0] if named else None
        out.append(s)
    return out




async def collect(pool: HostPool, envs: list[str]) -> list[ServiceStatus]:
    await asyncio.gather(*(pool.resolve(env) for env in envs))
    # A Swarm's services run as tasks, not as named containers: swarm/status.py reads them.
    places = [p for env in envs if pool.env(env).swarm is None for p in pool.placements(env)]
    groups = list(by_host(places))
    results = await asyncio.gather(*(read_host(pool, e, h, ps) for (e, h), ps in groups))
    return [s for group in results for s in group]


@dataclass
class Drift:
    service: str
    images: dict[str, list[str]]  # env -> image refs with short ids
    differs: bool


def drift(statuses: list[ServiceStatus], envs: list[str]) -> list[Drift]:
    """A service drifts when the set of image ids it runs differs between environments."""
    out = []
    for service in dict.fromkeys(s.place.service for s in statuses):
        ids: dict[str, set[str]] = {e: set() for e in envs}
        shown: dict[str, list[str]] = {e: [] for e in envs}
        for s in statuses:
            if s.place.service != service or s.facts is None:
                continue
            ids[s.place.env].add(s.facts.image_id)
            label = f"{s.facts.image_ref} ({short_id(s.facts.image_id)})"
            if label not in shown[s.place.env]:
                shown[s.place.env].append(label)
        distinct = {frozenset(v) for v in ids.values()}
        out.append(Drift(service, shown, len(distinct) > 1))
    return out
