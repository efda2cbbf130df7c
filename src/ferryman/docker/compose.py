"""docker compose (v2 plugin) and docker-compose (v1): pin one service's image and bring it up.

The operator's compose files are never edited: an override file beside ferryman's state
pins the image, and only that service is recreated.
"""

from __future__ import annotations

import re

from .inspect import ComposeInfo

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
