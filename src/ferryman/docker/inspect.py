"""Models of `docker inspect` output for containers: state, health, image, how it was started."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

COMPOSE = "com.docker.compose."


@dataclass
class ComposeInfo:
    """What the com.docker.compose.* labels say: enough to run compose for this service again."""

    project: str
    service: str
    working_dir: str
    config_files: list[str]
    version: str = ""

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> ComposeInfo | None:
        project = labels.get(COMPOSE + "project", "")
        if not project:
            return None
        working_dir = labels.get(COMPOSE + "project.working_dir", "")
        raw = labels.get(COMPOSE + "project.config_files", "")
        files = [f.strip() for f in raw.split(",") if f.strip()]
        # docker-compose v1 records paths relative to the working dir; v2 records them absolute.
        files = [f if posixpath.isabs(f) or not working_dir else posixpath.join(working_dir, f)
                 for f in files]
        return cls(project, labels.get(COMPOSE + "service", ""), working_dir, files,
                   labels.get(COMPOSE + "version", ""))

    @property
    def complete(self) -> bool:
        return bool(self.working_dir and self.config_files and self.service)


@dataclass
class ContainerFacts:
    name: str
    id: str
    image_ref: str  # what the container was started from, e.g. app:v1
    image_id: str
    status: str  # created, running, paused, restarting, removing, exited, dead
    health: str | None  # starting, healthy, unhealthy; None without a healthcheck
    restarts: int
    started_at: str
    finished_at: str
    exit_code: int
    oom_killed: bool
    labels: dict[str, str] = field(default_factory=dict)
    compose: ComposeInfo | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def mode(self) -> str:
        return "compose" if self.compose else "run"

    @property
    def image_tag(self) -> str:
        """The tag part of image_ref ("latest" when none is written)."""
        ref = self.image_ref.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"

    @classmethod
    def from_inspect(cls, d: dict[str, Any]) -> ContainerFacts:
        state = d.get("State") or {}
        config = d.get("Config") or {}
        labels = config.get("Labels") or {}
        health = state.get("Health") or {}
        return cls(
            name=(d.get("Name") or "").lstrip("/"),
            id=d.get("Id", ""),
            image_ref=config.get("Image", ""),
            image_id=d.get("Image", ""),
            status=state.get("Status", "unknown"),
            health=health.get("Status") or None,
            restarts=int(d.get("RestartCount") or 0),
            started_at=state.get("StartedAt", ""),
            finished_at=state.get("FinishedAt", ""),
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            labels=labels,
            compose=ComposeInfo.from_labels(labels),
            raw=d,
        )


def parse_containers(stdout: str) -> dict[str, ContainerFacts]:
    """Containers by name from `docker inspect` stdout.

    `docker inspect a b` exits 1 when one is missing but still prints the others, so the
    caller parses stdout whatever the exit status, and a name absent here is absent on the host.
    """
    text = stdout.strip()
    if not text:
        return {}
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"docker inspect printed something that is not JSON: {exc}") from exc
    facts = [ContainerFacts.from_inspect(item) for item in items]
    return {f.name: f for f in facts}


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]
