"""docker compose (v2 plugin) and docker-compose (v1): pin one service's image and bring it up.

The operator's compose files are never edited: an override file beside ferryman's state
pins the image, and only that service is recreated.
"""

from __future__ import annotations

import asyncio
import re
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


def override(service: str, image: str, version: str | None) -> str:
    head = f'version: "{version}"\n' if version else ""
    return f'{head}services:\n  {service}:\n    image: "{image}"\n'


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
