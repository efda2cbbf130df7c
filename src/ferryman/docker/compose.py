"""docker compose (v2 plugin) and docker-compose (v1): pin one service's image and bring it up,
and find a service's container by its compose labels.

The operator's compose files are never edited: an override file beside ferryman's state
pins the image, and only that service is recreated.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .inspect import ComposeInfo

if TYPE_CHECKING:
    from ..transport import Host

_VERSION = re.compile(r"""^version:\s*["']?([0-9.]+)["']?\s*$""", re.MULTILINE)


def file_version(text: str) -> str | None:
    """The `version:` of a compose file; v1 refuses overrides whose version differs."""
    m = _VERSION.search(text)
    return m.group(1) if m else None


def override(service: str, image: str, version: str | None,
             env: Mapping[str, str] | None = None) -> str:
    """The override file that pins `image` (and sets `env`, the environment's own values,
    over the compose file's) for `service`."""
    head = f'version: "{version}"\n' if version else ""
    text = f'{head}services:\n  {service}:\n    image: "{image}"\n'
    if env:
        # JSON strings are YAML double-quoted scalars; compose reads $ as interpolation.
        text += "    environment:\n" + "".join(
            f"      {k}: {json.dumps(v.replace('$', '$$'))}\n" for k, v in env.items())
    return text


def binary(v2: bool) -> list[str]:
    return ["docker", "compose"] if v2 else ["docker-compose"]


def up_service(info: ComposeInfo, override_path: str, v2: bool) -> list[str]:
    # A service brought up once with the override lists it among its files: name it once.
    own = [f for f in info.config_files if f != override_path]
    files = [arg for f in [*own, override_path] for arg in ("-f", f)]
    return [*binary(v2), "-p", info.project, "--project-directory", info.working_dir, *files,
            "up", "-d", "--no-deps", info.service]


# --- which compose a host has ---------------------------------------------------------------

def v2_version() -> list[str]:
    return ["docker", "compose", "version", "--short"]


def v1_version() -> list[str]:
    return ["docker-compose", "version", "--short"]


@dataclass(frozen=True)
class ComposeTool:
    flavour: str  # "v2": the docker compose plugin; "v1": docker-compose
    version: str

    @property
    def label(self) -> str:
        return f"{' '.join(binary(self.flavour == 'v2'))} {self.version}"


def read_tool(v2_ok: bool, v2_out: str, v1_ok: bool, v1_out: str) -> ComposeTool | None:
    """From the answers to v2_version() and v1_version(): the plugin wins when both answer."""
    if v2_ok and v2_out.strip():
        return ComposeTool("v2", v2_out.strip())
    if v1_ok and v1_out.strip():
        return ComposeTool("v1", v1_out.strip())
    return None


async def detect(host: Host) -> ComposeTool | None:
    v2, v1 = await asyncio.gather(host.run(v2_version(), timeout=30),
                                  host.run(v1_version(), timeout=30))
    return read_tool(v2.ok, v2.stdout, v1.ok, v1.stdout)


async def compose_flavour(host: Host) -> str | None:
    """"v2" for the docker compose plugin, "v1" for docker-compose, None for neither."""
    tool = await detect(host)
    return tool.flavour if tool else None
# --- finding a service's container by its compose labels ----------------------------------

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
# A release sets the old container aside as NAME.ferryman-ID: never the service's container.
KEPT_MARK = ".ferryman-"
_LIST_FORMAT = "\t".join(["{{.Names}}", *(f'{{{{.Label "{k}"}}}}'
                                          for k in (PROJECT_LABEL, SERVICE_LABEL, ONEOFF_LABEL))])


@dataclass(frozen=True)
class Listed:
    """One container of `docker ps -a`, with the compose labels that name it (or empty)."""

    name: str
    project: str = ""
    service: str = ""
    oneoff: bool = False


class AmbiguousService(ValueError):
    pass


def list_containers() -> list[str]:
    """Every container of the host with its compose project and service: one round trip
    names all services of a host, whichever compose (or none) started them."""
    return ["docker", "ps", "-a", "--no-trunc", "--format", _LIST_FORMAT]


def parse_listing(stdout: str) -> list[Listed]:
    out = []
    for line in stdout.splitlines():
        fields = line.split("\t")
        if not fields[0].strip():
            continue
        fields += [""] * (4 - len(fields))
        # Names lists legacy link aliases after the name itself.
        name = fields[0].split(",")[0].strip()
        out.append(Listed(name, fields[1], fields[2], fields[3].lower() == "true"))
    return out


def default_names(project: str, service: str) -> list[str]:
    """The names compose gives the first container of a service: v2, then v1."""
    return [f"{project}-{service}-1", f"{project}_{service}_1"]


def locate(listing: list[Listed], project: str, service: str,
           fallbacks: list[str]) -> str | None:
    """The container of compose `project`/`service` on a host, by its labels; else the first
    of `fallbacks` that exists (a container recreated by `docker run` keeps its name but not
    the labels); None when there is none (a service yet to be created there).

    `docker compose run` one-offs and containers set aside by a release are not candidates.
    """
    labelled = sorted(c.name for c in listing if c.project == project and c.service == service
                      and not c.oneoff and KEPT_MARK not in c.name)
    if len(labelled) > 1:
        raise AmbiguousService(
            f"compose service {project}/{service} has {len(labelled)} containers "
            f"({', '.join(labelled)})")
    if labelled:
        return labelled[0]
    names = {c.name for c in listing}
    return next((n for n in fallbacks if n in names), None)
