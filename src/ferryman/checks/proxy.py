"""The reverse proxy of source note 003: a host nginx already holds port 80, so it forwards
`/` to the front end's published port and `/api`, `/ws` (with the Upgrade headers) to the
back end's. `ferryman proxy-config` writes the server block on the host and checks it with
`nginx -t`, putting the previous file back when nginx refuses it (flows.proxy). Here: what
to write, read from the host and changing nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput
from .context import HostContext
from .ports import bindings

ROOT_HINTS = ("front", "web", "ui", "www", "site", "portal")
API_HINTS = ("api", "back", "server")
# Where nginx takes extra server blocks: Baota's panel (note 003), then the distributions'.
NGINX_DIRS = ("/www/server/panel/vhost/nginx", "/etc/nginx/conf.d", "/etc/nginx/sites-enabled")


@dataclass
class Route:
    path: str
    service: str
    port: int
    websocket: bool = False
    upstream: str | None = None  # a service with `proxy:`: its blue-green upstream

    @property
    def target(self) -> str:
        return self.upstream or f"127.0.0.1:{self.port}"


def _hinted(names: list[str], hints: tuple[str, ...], skip: str | None = None) -> str | None:
    for hint in hints:
        for name in names:
            if hint in name.lower() and name != skip:
                return name
    return None


def pick_routes(ports: dict[str, int], root: str | None = None,
                api: str | None = None, upstreams: dict[str, str] | None = None) -> list[Route]:
    """`/` to the front end, `/api` and `/ws` to the back end: by the names given, else by
    the service names (web, frontend... / api, backend...), else in ferryman.yml's order."""
    names = list(ports)
    if not names:
        raise BadInput("no service publishes a port on this host: nothing to proxy to")
    for given in (root, api):
        if given is not None and given not in ports:
            raise BadInput(f"service {given} publishes no port on this host (those that do: "
                           f"{', '.join(names)})")
    root = root or _hinted(names, ROOT_HINTS) or names[0]
    api = api or _hinted(names, API_HINTS, skip=root) or next(
        (n for n in names if n != root), root)
    via = upstreams or {}
    return [Route("/", root, ports[root], upstream=via.get(root)),
            Route("/api", api, ports[api], upstream=via.get(api)),
            Route("/ws", api, ports[api], websocket=True, upstream=via.get(api))]


def render(domain: str, routes: list[Route], listen: int = 80) -> str:
    lines = [f"# Written by ferryman proxy-config for {domain}:",
             *(f"#   {r.path} -> {r.service} ({r.target})" for r in routes),
             "server {", f"    listen {listen};", f"    server_name {domain};", ""]
    for r in routes:
        lines += [f"    location {r.path} {{", f"        proxy_pass http://{r.target};"]
        if r.websocket:
            lines += ["        proxy_http_version 1.1;",
                      "        proxy_set_header Upgrade $http_upgrade;",
                      '        proxy_set_header Connection "upgrade";',
                      "        proxy_read_timeout 3600s;"]
        lines += ["        proxy_set_header Host $host;",
                  "        proxy_set_header X-Real-IP $remote_addr;",
                  "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                  "        proxy_set_header X-Forwarded-Proto $scheme;",
                  "    }", ""]
    lines[-1] = "}"
    return "\n".join(lines) + "\n"


@dataclass
class ProxyResult:
    env: str
    host: str
    domain: str
    routes: list[Route]
    config: str
    path: str | None = None  # where it was written on the host; None with --print
    backup: str | None = None  # the previous file, kept beside it
    nginx: str | None = None  # nginx's path on the host; None: not installed
    validated: bool | None = None  # nginx -t said yes / no; None: not run
    nginx_output: str = ""
    restored: bool = False  # nginx -t refused it and the previous state was put back

    @property
    def ok(self) -> bool:
        return self.validated is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "host": self.host, "domain": self.domain,
            "routes": [r.__dict__ for r in self.routes], "config": self.config,
            "path": self.path, "backup": self.backup, "nginx": self.nginx,
            "validated": self.validated, "nginx_output": self.nginx_output,
            "restored": self.restored, "ok": self.ok,
        }


@dataclass
class NginxPlace:
    dirs: list[str] = field(default_factory=list)
    nginx: str | None = None


def parse_place(stdout: str) -> NginxPlace:
    out = NginxPlace()
    for line in stdout.splitlines():
        kind, _, value = line.partition(" ")
        if kind == "nginx" and value:
            out.nginx = value
        elif kind == "dir" and value:
            out.dirs.append(value)
    return out


async def published_ports(ctx: HostContext) -> dict[str, int]:
    """service -> its first published TCP host port, in ferryman.yml's order."""
    _, facts = await ctx.services()
    out = {}
    for p in ctx.placements:
        f = facts.get(p.container)
        tcp = [b for b in bindings(f) if b.proto == "tcp"] if f else []
        if tcp:
            out[p.service] = tcp[0].host_port
    return out
