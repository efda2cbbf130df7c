"""A blue-green site on test hosts, shared by the zero-downtime tests and the benchmark:
PROD runs Debian's nginx in front of `web` (the app server of lab/appserver.c, a plain
`docker run` container), TEST runs the next version; a load client runs in a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .hosts import Lab, LabHost
from .images import appserver_image, ensure_host_image
from .load import Load, Results

UPSTREAM_FILE = "/etc/nginx/conf.d/ferryman_web.conf"
SITE = "/etc/nginx/sites-enabled/default"
# The operator's site: / and /ws through ferryman's upstream. nginx below 1.27.4 closes idle
# keep-alive connections at once on a reload: a request sent on one at that instant fails.
# With keep-alive off for clients there is none to close (docs/zero-downtime.md).
SITE_CONF = """\
server {
    listen 80 default_server;
    {keepalive}
    location / {
        proxy_pass http://ferryman_web;
        proxy_set_header Host $host;
    }
    location /ws {
        proxy_pass http://ferryman_web;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 3600s;
    }
}
"""
# Before the upstream exists, the site still sends traffic to the published port.
KEEPALIVE_OFF = "keepalive_timeout 0;"


def site_conf(keepalive: bool = False, upstream: bool = True) -> str:
    text = SITE_CONF.replace("{keepalive}", "" if keepalive else KEEPALIVE_OFF)
    # Before the upstream exists, the site sends traffic to the published port.
    return text if upstream else text.replace("http://ferryman_web", "http://127.0.0.1:8080")

CONFIG = """\
version: 1
project: shop
log_dir: {workdir}/logs
ssh:
  known_hosts: {known_hosts}
  connect_timeout: 5
environments:
  test:
    hosts:
      - name: test-1
        address: root@127.0.0.1:{test_port}
        identity_file: {key}
  prod:
    hosts:
      - name: prod-1
        address: root@127.0.0.1:{prod_port}
        identity_file: {key}
services:
  web:
    container: web
    health:
      http: http://127.0.0.1:8080/health
      retries: {retries}
      interval: 500ms
    proxy:
      port: 8080
      ports: [18080, 18081]
      drain: 6s
"""


@dataclass
class Site:
    lab: Lab
    test: LabHost
    prod: LabHost
    workdir: Path
    url: str  # nginx on PROD, from this machine
    keepalive: bool = False

    def config(self, retries: int = 20, extra: str = "") -> Path:
        path = self.workdir / "ferryman.yml"
        path.write_text(CONFIG.format(
            workdir=self.workdir, known_hosts=self.lab.known_hosts, key=self.lab.key_path,
            test_port=self.test.port, prod_port=self.prod.port, retries=retries) + extra)
        return path

    def on_test(self, version: str, **kw: int) -> None:
        """TEST's web runs `version` (a new build to release)."""
        image = appserver_image(version, **kw)
        self.lab.load_image(self.test, image)
        self.lab.sh(self.test, "docker rm -f web >/dev/null 2>&1; docker run -d --name web "
                    f"-p 127.0.0.1:8080:8080 {image} >/dev/null")

    def prod_sh(self, script: str, check: bool = True) -> str:
        return self.lab.sh(self.prod, script, check=check)

    def generation(self) -> str:
        """The generation nginx serves for ferryman_web (which file it has loaded)."""
        return self.prod_sh("curl -s -H 'Host: ferryman_web.generation.ferryman' "
                            "http://127.0.0.1:18409/ferryman-generation", check=False).strip()

    def use_upstream(self) -> None:
        """The operator's step after `proxy-upstream`: the site names the upstream."""
        self.lab.exec(self.prod, ["sh", "-c", f"cat > {SITE}"],
                      input=site_conf(self.keepalive).encode())
        self.prod_sh("nginx -t 2>&1 && nginx -s reload")


@contextmanager
def started_site(workdir: Path, prefix: str, kind: str = "bookworm",
                 keepalive: bool = False) -> Iterator[Site]:
    """Two hosts of `kind`; PROD's nginx serves the app by its published port until
    `proxy-upstream` has run and `use_upstream` points the site at it."""
    ensure_host_image(kind)
    lab = Lab(workdir, prefix=prefix, kind=kind)
    try:
        test, prod = lab.start(["test", "prod"], publish=(80,))
        v1 = appserver_image("v1")
        lab.load_image(prod, v1)
        lab.sh(prod, "docker run -d --name web --restart unless-stopped "
               f"-p 127.0.0.1:8080:8080 {v1} >/dev/null")
        lab.exec(prod, ["sh", "-c", f"cat > {SITE}"],
                 input=site_conf(keepalive, upstream=False).encode())
        lab.sh(prod, "nginx")
        yield Site(lab, test, prod, workdir, f"http://127.0.0.1:{prod.published[80]}",
                   keepalive)
    finally:
        lab.remove()


class Background:
    """The load client in a thread of its own, for as long as the `with` lasts."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.results: Results | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.results = self._loop.run_until_complete(self.load.run())

    def __enter__(self) -> Background:
        self._thread.start()
        time.sleep(1.0)  # connections open, WebSockets up
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self.load.stop)
        self._thread.join(timeout=180)


