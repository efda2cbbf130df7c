"""The upstream file of a proxied service, and what is read back from it.

ferryman owns one file per service in a folder nginx includes at `http` level. It names the
one side that takes traffic, and serves the file's generation (the release that wrote it) on
a loopback port, so a reload is confirmed by asking nginx itself, not by waiting."""

from __future__ import annotations

import re
from dataclasses import dataclass

GENERATION_PATH = "/ferryman-generation"


def file_path(folder: str, upstream: str) -> str:
    return f"{folder.rstrip('/')}/{upstream}.conf"


def marker_host(upstream: str) -> str:
    """The server_name of the file's generation block: many files share one port."""
    return f"{upstream}.generation.ferryman"


def render(upstream: str, service: str, port: int, generation: str, marker_port: int) -> str:
    return (
        f"# Written by ferryman for service {service}; each release rewrites it.\n"
        f"# A location sends traffic here with `proxy_pass http://{upstream};`.\n"
        f"# generation {generation}\n"
        f"upstream {upstream} {{\n"
        f"    server 127.0.0.1:{port} max_fails=0;\n"
        "}\n"
        "server {\n"
        f"    listen 127.0.0.1:{marker_port};\n"
        f"    server_name {marker_host(upstream)};\n"
        f"    location = {GENERATION_PATH} {{ return 200 \"{generation}\\n\"; }}\n"
        "}\n"
    )


@dataclass(frozen=True)
class Upstream:
    port: int | None  # the loopback port the file sends traffic to
    generation: str | None  # the release that wrote it; None: not written by ferryman


_SERVER = re.compile(r"^\s*server\s+127\.0\.0\.1:(\d+)\b", re.M)
_GENERATION = re.compile(r"^# generation (\S+)$", re.M)


def parse(text: str) -> Upstream:
    port = _SERVER.search(text)
    gen = _GENERATION.search(text)
    return Upstream(int(port.group(1)) if port else None, gen.group(1) if gen else None)


def routes_to(config_dump: str, upstream: str) -> bool:
    """Whether some location of `nginx -T`'s output proxies to the upstream."""
    pattern = rf"^[^#\n]*\bproxy_pass\s+https?://{re.escape(upstream)}\s*[;/]"
    return re.search(pattern, config_dump, re.M) is not None


def other_port(ports: tuple[int, int], live: int | None) -> int:
    """The port the new side takes: whichever of the two the live side does not hold."""
    return ports[1] if live == ports[0] else ports[0]
