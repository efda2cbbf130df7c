"""One container, one mount, one host as init sees them: plain data read from `docker inspect`,
so that everything after the reading is a pure function (and testable with captured output)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks.ports import bindings
from ..docker.compose import KEPT_MARK, ONEOFF_LABEL
from ..docker.inspect import ContainerFacts
from .read import PathInfo

_ANONYMOUS = re.compile(r"[0-9a-f]{64}")


@dataclass
class Mount:
    type: str  # volume, bind, tmpfs...
    source: str  # the volume's name, or the bind's host path
    destination: str
    rw: bool

    @property
    def anonymous(self) -> bool:
        """A volume Docker named itself (VOLUME in the image, or `-v /path`): its name differs
        on every host, so ferryman.yml cannot name it."""
        return self.type == "volume" and bool(_ANONYMOUS.fullmatch(self.source))


@dataclass
class Port:
    host_ip: str  # "" or 0.0.0.0: every interface
    host_port: int
    container_port: int

    @property
    def probe_ip(self) -> str:
        """Where the host itself reaches this port."""
        if self.host_ip in ("", "0.0.0.0", "::"):
            return "127.0.0.1"
        return f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip


@dataclass
class Seen:
    """One container on one host."""

    name: str
    image: str  # as it was started: app:v2, postgres:16
    status: str
    project: str = ""  # compose labels, when compose made it
    service: str = ""
    compose_files: list[str] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)  # container ports, the image's included
    healthcheck: bool = False  # the image's or the container's own HEALTHCHECK
    health: str | None = None  # what Docker says of it now
    mounts: list[Mount] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting")

    @property
    def compose(self) -> tuple[str, str] | None:
        return (self.project, self.service) if self.project and self.service else None

    @classmethod
    def of(cls, f: ContainerFacts) -> Seen:
        config = f.raw.get("Config") or {}
        test = (config.get("Healthcheck") or {}).get("Test") or []
        exposed = sorted({int(k.split("/")[0]) for k in (config.get("ExposedPorts") or {})
                          if k.split("/")[0].isdigit()})
        mounts = [Mount(m.get("Type") or "", m.get("Name") or m.get("Source") or "",
                        m.get("Destination") or "", bool(m.get("RW")))
                  for m in f.raw.get("Mounts") or []]
        return cls(
            name=f.name, image=f.image_ref, status=f.status,
            project=f.compose.project if f.compose else "",
            service=f.compose.service if f.compose else "",
            compose_files=f.compose.config_files if f.compose else [],
            ports=[Port(b.host_ip, b.host_port, b.container_port) for b in bindings(f)
                   if b.proto == "tcp"],
            exposed=exposed,
            healthcheck=bool(f.health) or bool(test and test[0] != "NONE"),
            health=f.health,
            mounts=mounts,
        )


def worth_reading(f: ContainerFacts) -> bool:
    """Containers a release set aside and compose one-offs are nobody's service."""
    return KEPT_MARK not in f.name and f.labels.get(ONEOFF_LABEL, "").lower() != "true"


@dataclass
class HostFacts:
    """What init read on one host."""

    env: str
    host: str  # its label in the proposal
    address: str  # the SSH address it was reached at
    containers: list[Seen] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # its own, container bridges left out
    paths: dict[str, PathInfo] = field(default_factory=dict)  # bind sources
    probes: dict[str, int] = field(default_factory=dict)  # URL -> HTTP status (0: none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
