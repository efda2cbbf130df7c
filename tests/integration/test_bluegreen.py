"""Blue-green releases through the operator's own nginx, on real hosts and under load.

PROD runs Debian's nginx (started by the test, as an operator's host would run it) in front of
`web`, a plain `docker run` container of the app server of lab/appserver.c; TEST runs the next
version. The load client sends GETs, POSTs with bodies, long requests and WebSockets to
nginx through a port the PROD host publishes on 127.0.0.1, while ferryman switches.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest
from labenv import ferryman

from ferryman.lab.images import appserver_image
from ferryman.lab.load import Load
from ferryman.lab.proxysite import Background, Site, started_site

UPSTREAM_FILE = "/etc/nginx/conf.d/ferryman_web.conf"


# Both host kinds: Debian's nginx 1.22 with Docker 20.10, nginx 1.26 with Docker 26.1.
@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def site(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp(f"bluegreen-{request.param}")
    with started_site(workdir, f"ferryman-pytest-{os.getpid()}-bg", request.param) as site:
        yield site


def _version_served(url: str) -> str:
    import httpx
    return httpx.get(url + "/", timeout=5).headers.get("x-app-version", "")


def test_setup_then_switches_under_load(site: Site) -> None:
    cfg = site.config()
    # Without the upstream file, a release refuses before touching anything.
    site.on_test("v2")
    refused = ferryman(cfg, "release", "test", "prod", "--yes")
    assert refused.code == 3, refused.err
    assert "upstream file /etc/nginx/conf.d/ferryman_web.conf is missing" in refused.err
    assert "proxy-upstream" in refused.err
    # proxy-upstream writes it for the running container; the operator then points the site
    # at it.
    setup = ferryman(cfg, "proxy-upstream", "prod")
    assert setup.code == 0, setup.err
    text = site.prod_sh(f"cat {UPSTREAM_FILE}")
    assert "server 127.0.0.1:8080" in text
    site.use_upstream()
    time.sleep(0.5)
    assert _version_served(site.url) == "v1"

    switched: list[tuple[float, float, str]] = []  # release started, returned, version
    with Background(Load(site.url, rate=120, ws_clients=4, slow_every=100)) as bg:
        for n in range(2, 6):
            version = f"v{n}"
            site.on_test(version)
            began = time.monotonic()
            run = ferryman(cfg, "release", "test", "prod", "--yes")
            assert run.code == 0, run.err
            switched.append((began, time.monotonic(), version))
            assert "switch nginx to new web on prod-1" in run.err, run.err
            time.sleep(1.0)
        # Rollback is the same switch backwards: the kept v4 starts beside v5.
        began = time.monotonic()
        back = ferryman(cfg, "rollback", "prod", "--yes")
        assert back.code == 0, back.err
        switched.append((began, time.monotonic(), "v4"))
        time.sleep(1.0)
    results = bg.results
    assert results is not None
    print(results.summary())
    t0 = results.samples[0].started
    print("switches", [(round(a - t0, 2), round(b - t0, 2), v) for a, b, v in switched])
    print("late", [(round(x.started - t0, 2), round(x.took, 2), x.kind)
                   for x in results.late()][:10])
    print("failed", [(round(x.started - t0, 2), round(x.took, 2), x.kind, x.error or x.status)
                     for x in results.failed][:10])
    assert len(results.samples) > 1000
    assert results.failed == [], (results.summary(), results.failed[:5])
    assert results.late() == [], (results.summary(), results.late()[:5])
    # Every request that started after a release returned (its switch confirmed) and before
    # the next one began was answered by the new side alone.
    for i, (_, done, version) in enumerate(switched):
        until = switched[i + 1][0] if i + 1 < len(switched) else float("inf")
        assert set(results.versions(since=done, until=until)) == {version}
    # WebSockets: each switch closes the old side's with 1001, and they come back at once.
    gaps = results.ws_gaps()
    assert len(gaps) >= 4 * (len(switched) - 1), gaps
    assert {code for code, _ in gaps} == {1001}, gaps
    assert max(g for _, g in gaps) < 5.0, gaps
    # The old sides are kept, stopped, for rollback; the live one has the service's name.
    names = site.prod_sh("docker ps -a --format '{{.Names}} {{.State}}'")
    assert re.search(r"^web running$", names, re.M), names
    assert len(re.findall(r"^web\.ferryman-\S+ exited$", names, re.M)) >= 1, names
    assert "ferryman-next" not in names


def test_unhealthy_new_side_never_takes_traffic(site: Site) -> None:
    cfg = site.config(retries=4)
    before = site.prod_sh(f"cat {UPSTREAM_FILE}")
    live = _version_served(site.url)
    # A build that listens on another port: its gate fails, nginx is never touched.
    site.on_test("v9", port=9999)
    with Background(Load(site.url, rate=100, ws_clients=2)) as bg:
        run = ferryman(cfg, "release", "test", "prod", "--yes")
    assert run.code == 1, run.err
    assert "health of new web on prod-1" in run.err
    results = bg.results
    assert results is not None and results.failed == [], (results.summary(),
                                                          results.failed[:5])
    assert set(results.versions()) == {live}
    assert site.prod_sh(f"cat {UPSTREAM_FILE}") == before
    names = site.prod_sh("docker ps -a --format '{{.Names}}'")
    assert "ferryman-next" not in names


def test_proxy_config_block_serves_through_the_real_nginx(site: Site) -> None:
    """proxy-config's server block, checked by the real `nginx -t` and then carrying real
    traffic: / to the blue-green service through its upstream, /api and /ws (WebSocket) to
    a plain service on its published port."""
    import httpx
    from websockets.sync.client import connect

    api = appserver_image("api-v1")
    site.lab.load_image(site.prod, api)
    site.prod_sh("docker rm -f api >/dev/null 2>&1; docker run -d --name api "
                 f"-p 127.0.0.1:9090:8080 {api} >/dev/null")
    cfg = site.config(extra="  api:\n    container: api\n")
    run = ferryman(cfg, "proxy-config", "prod", "--domain", "shop.test", "--root", "web",
                   "--api", "api")
    assert run.code == 0, run.err
    assert "nginx -t: ok" in run.err
    block = site.prod_sh("cat /etc/nginx/conf.d/shop.test.conf")
    assert re.search(r"location / \{\n\s+proxy_pass http://ferryman_web;", block), block
    assert re.search(r"location /api \{\n\s+proxy_pass http://127.0.0.1:9090;", block), block
    site.prod_sh("nginx -s reload")
    live = _version_served(site.url)  # the default server: the blue-green side
    host = {"Host": "shop.test"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the reload has taken
        got = httpx.get(site.url + "/api/orders", headers=host, timeout=5)
        if got.headers.get("x-app-version") == "api-v1":
            break
        time.sleep(0.2)
    assert got.status_code == 200 and got.headers["x-app-version"] == "api-v1"
    root = httpx.get(site.url + "/", headers=host, timeout=5)
    assert root.status_code == 200 and root.headers["x-app-version"] == live
    posted = httpx.post(site.url + "/api/orders", headers=host, content=b"x" * 1000, timeout=5)
    assert posted.text == "api-v1 got 1000 bytes\n"
    ws_url = site.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, additional_headers=host, open_timeout=5) as sock:
        assert sock.recv(timeout=5) == "api-v1"
