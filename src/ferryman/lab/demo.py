"""The built-in demo: two local test hosts, TEST and PROD, running a small app.

Each host runs the app twice: `web` started by plain `docker run` (run mode) and `api` by
compose (compose mode: `docker-compose` v1 on a bookworm host, `docker compose` v2 on
trixie), plus a config file whose `base_url` names the host's own
environment. PROD runs v1, TEST runs v2.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .hosts import Lab, LabHost
from .images import DEFAULT_KIND, LabError, build_app_image, docker, ensure_host_image

PREFIX = "ferryman-demo"
APP_DIR = "/opt/shop"
CONFIG_FILE = f"{APP_DIR}/app_config.json"
ADDRESSES = {"test": "10.0.0.58", "prod": "10.0.0.57"}  # names only: never contacted

# `init` makes busybox httpd stop at once on SIGTERM (as PID 1 it would ignore it).
COMPOSE = """\
version: "3.7"
services:
  api:
    image: {image}
    container_name: shop-api
    init: true
    ports: ["8081:8080"]
    volumes: ["{app_dir}/app_config.json:/www/config.json:ro"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      retries: 5
"""

# The demo app's two services, as every test configuration of it names them too.
SERVICES = """\
services:
  web:
    health:
      http: http://127.0.0.1:8080/health
      retries: 20
      interval: 500ms
  api:
    container: shop-api
    health:
      docker: true
      retries: 30
      interval: 1s
"""

CONFIG = """\
# ferryman.yml of the demo: two local test hosts on 127.0.0.1.
version: 1
project: shop
log_dir: {workdir}/logs
ssh:
  known_hosts: {known_hosts}
  connect_timeout: 10
environments:
  test:
    address: {test_address}
    hosts:
      - name: test-1
        address: root@127.0.0.1:{test_port}
        identity_file: {key}
  prod:
    address: {prod_address}
    hosts:
      - name: prod-1
        address: root@127.0.0.1:{prod_port}
        identity_file: {key}
    policy:
      allowed_tags: ["v*"]
{services}guards:
  - file: {config_file}
    key: base_url
    restart: [api]
"""


@dataclass
class Demo:
    lab: Lab
    hosts: dict[str, LabHost]
    config: Path


def app_images() -> dict[str, str]:
    return {v: build_app_image(v, f"app {v}") for v in ("v1", "v2")}


def deploy(lab: Lab, host: LabHost, image: str, base_url: str) -> None:
    """Starts the app on a host the way an operator would have, by hand."""
    lab.exec(host, ["mkdir", "-p", APP_DIR])
    lab.exec(host, ["sh", "-c", 'cat > "$1"', "-", CONFIG_FILE],
             input=json.dumps({"base_url": base_url, "name": "shop"}, indent=2).encode())
    lab.exec(host, ["docker", "run", "-d", "--name", "web", "-p", "8080:8080", "--init",
                    "--restart", "unless-stopped", "-e", "APP_MODE=web",
                    "-v", f"{CONFIG_FILE}:/www/config.json:ro", image])
    lab.exec(host, ["sh", "-c", 'cat > "$1"', "-", f"{APP_DIR}/docker-compose.yml"],
             input=COMPOSE.format(image=image, app_dir=APP_DIR).encode())
    compose_up(lab, host, APP_DIR)


def compose_up(lab: Lab, host: LabHost, project_dir: str, *args: str) -> None:
    """`compose up -d` in `project_dir`, with the compose of the host's kind."""
    lab.exec(host, ["sh", "-c", 'cd "$1" && shift && exec "$@"', "-", project_dir,
                    *host.compose, "up", "-d", *args])


def write_config(lab: Lab, hosts: dict[str, LabHost], workdir: Path, **extra: str) -> Path:
    path = workdir / "ferryman.yml"
    path.write_text(CONFIG.format(
        workdir=workdir, known_hosts=lab.known_hosts, key=lab.key_path,
        test_port=hosts["test"].port, prod_port=hosts["prod"].port,
        test_address=ADDRESSES["test"], prod_address=ADDRESSES["prod"],
        config_file=CONFIG_FILE, services=SERVICES, **extra,
    ))
    return path


def up(workdir: Path, prefix: str = PREFIX, kinds: dict[str, str] | None = None) -> Demo:
    """Builds what is missing, starts TEST and PROD, deploys v2 to TEST and v1 to PROD.

    `kinds` picks each role's kind of host (e.g. {"prod": "trixie"}); bookworm by default.
    PROD's config file names TEST (the pollution of source note 000): a release mends it.
    """
    down(workdir, prefix)
    workdir.mkdir(parents=True, exist_ok=True)
    for kind in {DEFAULT_KIND, *(kinds or {}).values()}:
        ensure_host_image(kind)
    images = app_images()
    lab = Lab(workdir, prefix=prefix)
    try:
        test, prod = lab.start(["test", "prod"], kinds=kinds)
        hosts = {"test": test, "prod": prod}
        for host in hosts.values():
            for image in images.values():
                lab.load_image(host, image)
        deploy(lab, test, images["v2"], f"http://{ADDRESSES['test']}:9380")
        deploy(lab, prod, images["v1"], f"http://{ADDRESSES['test']}:9380")
        # PROD drops v2: a release has to carry it there.
        lab.exec(prod, ["docker", "rmi", images["v2"]])
    except (LabError, OSError):
        lab.remove()
        raise
    return Demo(lab, hosts, write_config(lab, hosts, workdir))


def down(workdir: Path, prefix: str = PREFIX) -> int:
    """Removes the demo's hosts (found by label, also after a crash) and its files."""
    listed = docker("ps", "-aq", "--filter", f"label=io.ferryman.lab={prefix}", check=False)
    ids = listed.stdout.decode().split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    if workdir.exists():
        shutil.rmtree(workdir)
    return len(ids)
