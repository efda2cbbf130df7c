"""The upstream file of a canary: nginx's upstream for the service points at a small router
(a server block on a loopback port, in the same file) that sends each request to the old or
the new side.

- Share: `split_clients` on a key, `weight`% to the new side. A request without the cookie
  gets its own key (nginx's $request_id) and a cookie carrying it, so a browser stays on its
  side; as the share grows, a client on the new side stays there (the buckets nest).
- Testers: any value in the canary header sends the request to the new side.
- Evidence: an access log of `$msec $upstream_addr $status`, read per step for 5xx rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .upstream import GENERATION_PATH, marker_host


def log_path(upstream: str) -> str:
    return f"/var/log/nginx/{upstream}.canary.log"


def cookie(upstream: str) -> str:
    return upstream


def header_variable(header: str) -> str:
    """nginx's variable for a request header: X-Canary -> $http_x_canary."""
    return "$http_" + re.sub(r"[^a-z0-9]", "_", header.lower())


def render(upstream: str, service: str, old_port: int, new_port: int, weight: int,
           generation: str, marker_port: int, router_port: int, header: str) -> str:
    u = upstream
    return f"""\
# Written by ferryman for service {service}: a canary, {weight}% to the new side.
# A location sends traffic here with `proxy_pass http://{u};`.
# generation {generation}
log_format {u}_canary '$msec $upstream_addr $status';
map $cookie_{cookie(u)} ${u}_key {{ "" $request_id; default $cookie_{cookie(u)}; }}
map $cookie_{cookie(u)} ${u}_set {{ "" "{cookie(u)}=$request_id; Path=/; HttpOnly"; default ""; }}
split_clients "${u}_key" ${u}_split {{ {weight}% {u}_new; * {u}_old; }}
map {header_variable(header)} ${u}_side {{ "" ${u}_split; default {u}_new; }}
map $http_upgrade ${u}_connection {{ "" ""; default upgrade; }}
upstream {u} {{
    server 127.0.0.1:{router_port} max_fails=0;
}}
upstream {u}_old {{
    server 127.0.0.1:{old_port} max_fails=0;
}}
upstream {u}_new {{
    server 127.0.0.1:{new_port} max_fails=0;
}}
server {{
    listen 127.0.0.1:{router_port};
    access_log {log_path(u)} {u}_canary;
    location / {{
        proxy_pass http://${u}_side;
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection ${u}_connection;
        proxy_read_timeout 3600s;
        proxy_buffering off;
        add_header Set-Cookie ${u}_set always;
    }}
}}
server {{
    listen 127.0.0.1:{marker_port};
    server_name {marker_host(u)};
    location = {GENERATION_PATH} {{ return 200 "{generation}\\n"; }}
}}
"""


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0  # 5xx

    @property
    def rate(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    def __str__(self) -> str:
        return f"{self.errors}/{self.requests} 5xx ({self.rate:.1f}%)"


def tally(log: str, old_port: int, new_port: int) -> tuple[Tally, Tally]:
    """(old, new) from the canary log's lines `$msec $upstream_addr $status`."""
    old, new = Tally(), Tally()
    for line in log.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        side = (new if parts[1].endswith(f":{new_port}") else
                old if parts[1].endswith(f":{old_port}") else None)
        if side is None:
            continue
        side.requests += 1
        side.errors += parts[2].startswith("5")
    return old, new


@dataclass
class Verdict:
    abort: bool
    reason: str


def judge(old: Tally, new: Tally, margin: float, min_requests: int) -> Verdict:
    """Abort when the new side's 5xx rate exceeds the old side's by more than `margin`
    points, once it has answered `min_requests` (fewer: too few to tell, go on)."""
    if new.requests < min_requests:
        return Verdict(False, f"new {new}, old {old}: fewer than {min_requests} requests on "
                              "the new side, too few to judge")
    over = new.rate - old.rate
    if over > margin:
        return Verdict(True, f"new {new}, old {old}: {over:.1f} points over the old side, "
                             f"more than the {margin:g} allowed")
    return Verdict(False, f"new {new}, old {old}: within {margin:g} points")
