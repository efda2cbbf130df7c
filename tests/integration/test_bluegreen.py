"""Blue-green releases through the operator's own nginx, on real hosts and under load.

PROD runs Debian's nginx (started by the test, as an operator's host would run it) in front of
`web`, a plain `docker run` container of the app server of lab/appserver.c; TEST runs the next
version. The load client sends GETs, POSTs with bodies, long requests and WebSockets to
nginx through a port the PROD host publishes on 127.0.0.1, while ferryman switches.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from labenv import ferryman

from ferryman.lab.images import appserver_image
from ferryman.lab.load import Load, split
from ferryman.lab.proxysite import Background, Site, started_site

UPSTREAM_FILE = "/etc/nginx/conf.d/ferryman_web.conf"


# Both host kinds: Debian's nginx 1.22 with Docker 20.10, nginx 1.26 with Docker 26.1.
@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def site(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp(f"bluegreen-{request.param}")
    with started_site(workdir, f"ferryman-pytest-{os.getpid()}-bg", request.param) as site:
        yield site


def _ready(site: Site) -> Path:
    """The site as the first test leaves it (each test can run alone): the upstream written
    by proxy-upstream and named by the site."""
    cfg = site.config()
    if site.prod_sh(f"test -e {UPSTREAM_FILE} && echo yes", check=False).strip() != "yes":
        assert ferryman(cfg, "proxy-upstream", "prod").code == 0
        site.use_upstream()
    return cfg


def _version_served(url: str) -> str:
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
    _ready(site)
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


def test_failure_after_the_switch_goes_back_without_a_failed_request(site: Site) -> None:
    """The new side turns sick in the watch window, after nginx was switched, the old side
    stopped and the new one renamed: every undo runs under load, and traffic is back on the
    old side before the new one drains and goes."""
    cfg = _ready(site)
    live = _version_served(site.url)
    before = site.prod_sh(f"cat {UPSTREAM_FILE}")
    old_id = site.prod_sh("docker inspect --format '{{.Id}}' web").strip()
    site.on_test("v8", sick_after=8)
    with Background(Load(site.url, rate=120, ws_clients=2)) as bg:
        run = ferryman(cfg, "release", "test", "prod", "--yes", "--watch", "40s")
        done = time.monotonic()
        time.sleep(1.0)
    assert run.code == 1, run.err
    assert "failed" in run.err and "into the 40s watch" in run.err, run.err
    assert "switch nginx to new web on prod-1" in run.err
    results = bg.results
    assert results is not None
    print(results.summary())
    assert results.failed == [], (results.summary(), results.failed[:5])
    assert results.late() == [], (results.summary(), results.late()[:5])
    assert results.versions().get("v8"), "the new side never took traffic"
    # Both sides stopped the way an app is asked to: every WebSocket closed with 1001.
    assert {code for code, _ in results.ws_gaps()} == {1001}, results.ws_gaps()
    assert set(results.versions(since=done)) == {live}
    assert site.prod_sh(f"cat {UPSTREAM_FILE}") == before
    assert site.prod_sh("docker inspect --format '{{.Id}} {{.State.Running}}' web").split() \
        == [old_id, "true"]
    assert "ferryman-next" not in site.prod_sh("docker ps -a --format '{{.Names}}'")


def _wait_generation(site: Site, suffix: str, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        gen = site.generation()
        if gen.endswith(suffix):
            return gen
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    raise AssertionError(f"nginx never served a generation ending {suffix}: {site.generation()}")


def _release(cfg: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ferryman", "-c", str(cfg), "release",
                             "test", "prod", "--yes", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


def _share(seen: dict[str, int], version: str) -> float:
    return 100.0 * seen.get(version, 0) / sum(seen.values())


def test_canary_steps_are_measured_then_promoted(site: Site) -> None:
    cfg = _ready(site)
    old = _version_served(site.url)
    site.on_test("v6")
    proc = _release(cfg, "--canary", "5,25,100", "--step", "20s")
    try:
        for weight in (5, 25):
            gen = _wait_generation(site, f"-{weight}", proc)
            seen = asyncio.run(split(site.url, 3000))
            assert site.generation() == gen, "the step changed while it was measured"
            assert set(seen) == {old, "v6"}, seen
            assert abs(_share(seen, "v6") - weight) <= 2, (weight, seen)
        # A tester's header goes to the new side; a browser keeping its cookie stays put.
        assert asyncio.run(split(site.url, 40, headers={"X-Canary": "1"})) == {"v6": 40}
        assert len(asyncio.run(split(site.url, 40, sticky=True, concurrency=1))) == 1
        told = ferryman(cfg, "canary", "prod", "promote")
        assert told.code == 0, told.err
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "promoted by `ferryman canary ... promote`" in err
    assert re.search(r"canary web on prod-1 5%: new \d+/\d+ 5xx", err), err
    assert asyncio.run(split(site.url, 200)) == {"v6": 200}


def test_canary_aborts_by_itself_on_5xx(site: Site) -> None:
    cfg = _ready(site)
    old = _version_served(site.url)
    before = site.prod_sh(f"cat {UPSTREAM_FILE}")
    site.on_test("v7", fail_pct=40)
    proc = _release(cfg, "--canary", "25,100", "--step", "60s")
    try:
        _wait_generation(site, "-25", proc)
        while proc.poll() is None:  # traffic until the canary gives up by itself
            asyncio.run(split(site.url, 300))
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert re.search(r"canary of web on prod-1 aborted at 25%: new \d+/\d+ 5xx \(\d+\.\d%\), "
                     r"old 0/\d+ 5xx \(0\.0%\)", err), err
    assert site.prod_sh(f"cat {UPSTREAM_FILE}") == before
    assert asyncio.run(split(site.url, 200)) == {old: 200}
    assert "ferryman-next" not in site.prod_sh("docker ps -a --format '{{.Names}}'")


def test_proxy_config_block_serves_through_the_real_nginx(site: Site) -> None:
    """proxy-config's server block, checked by the real `nginx -t` and then carrying real
    traffic: / to the blue-green service through its upstream, /api and /ws (WebSocket) to
    a plain service on its published port."""
    _ready(site)

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
    # The WebSocket handshake by hand: a client library sends its own Host header.
    port = int(site.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /ws HTTP/1.1\r\nHost: shop.test\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"\x81\x06api-v1"):  # the first text frame
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    assert f"Sec-WebSocket-Accept: {accept}".encode() in answer
    assert answer.endswith(b"\x81\x06api-v1"), answer  # a text frame from the api side
