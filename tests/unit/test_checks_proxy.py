"""The nginx server block of `ferryman proxy-config` (source note 003): which service gets
`/`, `/api` and `/ws`, and the block itself."""

from __future__ import annotations

import pytest

from ferryman.checks.proxy import NGINX_DIRS, parse_place, pick_routes, render
from ferryman.errors import BadInput


def test_routes_follow_service_names() -> None:
    routes = pick_routes({"api": 8081, "web": 8080})
    assert [(r.path, r.service, r.port, r.websocket) for r in routes] == [
        ("/", "web", 8080, False), ("/api", "api", 8081, False), ("/ws", "api", 8081, True)]
    routes = pick_routes({"insurance-backend": 8000, "insurance-frontend": 8081})
    assert [(r.path, r.port) for r in routes] == [("/", 8081), ("/api", 8000), ("/ws", 8000)]


def test_routes_by_order_by_choice_and_alone() -> None:
    assert [r.port for r in pick_routes({"shop": 9000, "worker": 9001})] == [9000, 9001, 9001]
    assert [r.port for r in pick_routes({"shop": 9000})] == [9000, 9000, 9000]
    chosen = pick_routes({"web": 8080, "api": 8081}, root="api", api="web")
    assert [r.service for r in chosen] == ["api", "web", "web"]
    with pytest.raises(BadInput, match="publishes no port"):
        pick_routes({"web": 8080}, api="db")
    with pytest.raises(BadInput, match="nothing to proxy"):
        pick_routes({})


def test_server_block() -> None:
    text = render("insurance.hipigod.top", pick_routes({"frontend": 8081, "backend": 8000}))
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines[:4] == ["# Written by ferryman proxy-config for insurance.hipigod.top:",
                         "#   / -> frontend (127.0.0.1:8081)",
                         "#   /api -> backend (127.0.0.1:8000)",
                         "#   /ws -> backend (127.0.0.1:8000)"]
    assert lines[4:7] == ["server {", "listen 80;", "server_name insurance.hipigod.top;"]
    assert lines[-1] == "}"
    assert text.count("location ") == 3
    root = text[text.index("location / {"):text.index("location /api {")]
    assert "proxy_pass http://127.0.0.1:8081;" in root and "Upgrade" not in root
    ws = text[text.index("location /ws {"):]
    for needed in ("proxy_pass http://127.0.0.1:8000;", "proxy_http_version 1.1;",
                   "proxy_set_header Upgrade $http_upgrade;",
                   'proxy_set_header Connection "upgrade";', "proxy_set_header Host $host;"):
        assert needed in ws
    assert text.count("{") == text.count("}")


def test_where_nginx_is() -> None:
    place = parse_place("nginx /usr/sbin/nginx\ndir /etc/nginx/conf.d\n")
    assert place.nginx == "/usr/sbin/nginx" and place.dirs == ["/etc/nginx/conf.d"]
    assert parse_place("").nginx is None
    assert NGINX_DIRS[0] == "/www/server/panel/vhost/nginx"  # Baota's, as in note 003
