"""Real test hosts for the integration tests: two containers, each with its own dockerd and
sshd, reached over SSH on 127.0.0.1 with a key and known_hosts made for this run.

TEST runs app v2, PROD app v1, deployed as in the demo: one service started by `docker run`
(web) and one by docker-compose (api); PROD also has a compose service whose compose file was
deleted (legacy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferryman.lab import Lab, LabHost, build_app_image, demo, ensure_host_image

COMPOSE_LEGACY = """\
version: "3"
services:
  worker:
    image: {image}
    container_name: legacy-worker
    command: ["sh", "-c", "echo worker started; echo worker warning >&2; exec sleep 100000"]
"""


# Hosts of the trixie kind (Docker 26.1, `docker compose` v2) for TEST and PROD; the default
# kind is bookworm (Docker 20.10, docker-compose v1).
TRIXIE = {"test": "trixie", "prod": "trixie"}
# Runs a test that takes the `demo` fixture on both kinds of hosts: for the few tests that
# prove a path on Docker 26 and compose v2 too (each kind costs the test's full time).
on_both_kinds = pytest.mark.parametrize("demo", [None, TRIXIE], ids=["bookworm", "trixie"],
                                        indirect=True)


def kinds_of(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """The host kinds a `demo` fixture was parametrised with (None: bookworm)."""
    return getattr(request, "param", None)


@dataclass
class Env:
    lab: Lab
    test: LabHost
    prod: LabHost
    workdir: Path
    images: dict[str, str]

    def config(self, name: str = "ferryman.yml", extra: str = "", **over: str) -> Path:
        """Writes a ferryman.yml for the two hosts; `over` replaces host fields."""
        text = render_config(self, **over) + extra
        path = self.workdir / name
        path.write_text(text)
        return path

    def host_image_id(self, host: LabHost, container: str) -> str:
        return self.lab.exec(host, ["docker", "inspect", "--format", "{{.Image}}",
                                    container]).stdout.decode().strip()

    def started_at(self, host: LabHost, container: str) -> str:
        return self.lab.exec(host, ["docker", "inspect", "--format", "{{.State.StartedAt}}",
                                    container]).stdout.decode().strip()


def render_config(env: Env, test_port: str | None = None, prod_port: str | None = None,
                  known_hosts: str | None = None, prod_confirm: str = "true") -> str:
    key = env.lab.key_path
    return f"""\
version: 1
project: shop
log_dir: {env.workdir}/logs
ssh:
  known_hosts: {known_hosts or env.lab.known_hosts}
  connect_timeout: 5
environments:
  test:
    address: 10.0.0.58
    hosts:
      - name: test-1
        address: root@127.0.0.1:{test_port or env.test.port}
        identity_file: {key}
  prod:
    address: 10.0.0.57
    hosts:
      - name: prod-1
        address: root@127.0.0.1:{prod_port or env.prod.port}
        identity_file: {key}
    policy:
      allowed_tags: ["v*"]
      confirm: {prod_confirm}
{demo.SERVICES}  legacy:
    container: legacy-worker
"""


def _deploy(lab: Lab, host: LabHost, image: str, with_legacy: bool) -> None:
    demo.deploy(lab, host, image, f"http://{demo.ADDRESSES[host.role]}:9380")
    if with_legacy:
        lab.exec(host, ["mkdir", "-p", "/opt/legacy"])
        lab.exec(host, ["sh", "-c", "cat > /opt/legacy/docker-compose.yml"],
                 input=COMPOSE_LEGACY.format(image=image).encode())
        demo.compose_up(lab, host, "/opt/legacy")
        # The file goes; the container keeps the labels that name it (source note 001).
        lab.exec(host, ["rm", "-rf", "/opt/legacy"])


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    ensure_host_image()
    images = {
        "v1": build_app_image("v1", "app v1"),
        "v2": build_app_image("v2", "app v2"),
    }
    workdir = tmp_path_factory.mktemp("lab")
    lab = Lab(workdir, prefix=f"ferryman-pytest-{os.getpid()}")
    try:
        test, prod = lab.start(["test", "prod"])
        for host in (test, prod):
            for image in images.values():
                lab.load_image(host, image)
        _deploy(lab, test, images["v2"], with_legacy=False)
        _deploy(lab, prod, images["v1"], with_legacy=True)
        yield Env(lab, test, prod, workdir, images)
    finally:
        lab.remove()


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def ferryman(config: Path, *args: str, input: str | None = None,
             env_vars: dict[str, str] | None = None, timeout: float = 300) -> Run:
    """Runs the real command line, as an operator would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ferryman", "-c", str(config), *args],
        capture_output=True, text=True, input=input, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env_vars or {})},
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def found(report: dict[str, Any], check: str, subject: str | None = None,
          status: str | None = None) -> list[dict[str, Any]]:
    """The findings of a `doctor --json` report from one check (and subject, status)."""
    return [f for f in report["findings"] if f["check"] == check
            and (subject is None or f["subject"] == subject)
            and (status is None or f["status"] == status)]


def evidence(finding: dict[str, Any]) -> str:
    """A finding's evidence as the terminal shows it: each command, then its output."""
    return "\n".join(f"$ {e['command']}\n{e['output']}" for e in finding["evidence"])
