"""A Swarm of three test hosts (one manager, two workers) on the machine's Docker network,
plus a host for TEST, for the Swarm tests.

Nested in test hosts, the ingress routing mesh and overlay traffic between nodes time out:
the stack publishes its port with `mode: host` and attaches no overlay network of its own, so
each task answers on the port of the node it runs on (reached on the node's bridge address).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferryman.lab import Lab, LabHost

NODES = ["manager", "worker1", "worker2"]
PORT = 9080  # published by each task of web on its own node (mode: host)
API_PORT = 9081
STACK_DIR = "/opt/shop"
# A healthcheck Swarm gates each task on: a bad image lacks /www/health.
STACK = """\
version: "3.8"
services:
  web:
    image: {image}
    init: true
    healthcheck:
      test: ["CMD", "cat", "/www/health"]
      interval: 1s
      retries: 3
      start_period: 1s
    ports:
      - target: 8080
        published: {port}
        mode: host
    deploy:
      replicas: 1
  api:
    image: {image}
    init: true
    healthcheck:
      test: ["CMD", "cat", "/www/health"]
      interval: 1s
      retries: 3
      start_period: 1s
    ports:
      - target: 8080
        published: {api_port}
        mode: host
    deploy:
      replicas: 1
"""


@dataclass
class SwarmLab:
    lab: Lab
    test: LabHost
    nodes: dict[str, LabHost]
    workdir: Path
    images: dict[str, str]

    @property
    def manager(self) -> LabHost:
        return self.nodes["manager"]

    def config(self, extra_nodes: list[str] = ()) -> Path:  # type: ignore[assignment]
        key = self.lab.key_path
        hosts = "".join(
            f"      - name: {n}\n        address: {self.nodes[n].ssh_address}\n"
            f"        identity_file: {key}\n" for n in [*NODES, *extra_nodes])
        text = f"""\
version: 1
project: shop
log_dir: {self.workdir}/logs
ssh:
  known_hosts: {self.lab.known_hosts}
  connect_timeout: 5
environments:
  test:
    hosts:
      - name: test
        address: {self.test.ssh_address}
        identity_file: {key}
  prod:
    hosts:
{hosts}    swarm:
      manager: {self.manager.ssh_address}
      stack: shop
      timeout: 240
services:
  api:
    health:
      docker: true
      retries: 3
      interval: 1s
  web:
    health:
      docker: true
      retries: 3
      interval: 1s
"""
        path = self.workdir / "ferryman.yml"
        path.write_text(text)
        return path

    def sh(self, host: LabHost, script: str, check: bool = True) -> str:
        return self.lab.sh(host, script, check=check)

    def docker_json(self, host: LabHost, *argv: str) -> Any:
        return json.loads(self.lab.exec(host, ["docker", *argv]).stdout.decode())

    def service(self, name: str = "shop_web") -> dict[str, Any]:
        return self.docker_json(self.manager, "service", "inspect", name)[0]

    def spec_image(self, name: str = "shop_web") -> str:
        return self.service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    def update_state(self, name: str = "shop_web") -> str | None:
        return (self.service(name).get("UpdateStatus") or {}).get("State")

    def scale(self, replicas: int) -> None:
        """Swarm refuses a change that races its own (update out of sequence): again, a few
        times."""
        for attempt in range(5):
            res = self.lab.exec(self.manager, ["docker", "service", "scale", "--detach",
                                               f"shop_web={replicas}"], check=False)
            if res.returncode == 0:
                return
            if b"out of sequence" not in res.stderr or attempt == 4:
                raise AssertionError(res.stderr.decode())
            time.sleep(1)

    def tasks(self) -> list[dict[str, Any]]:
        out = self.lab.exec(self.manager, ["docker", "service", "ps", "--no-trunc", "--format",
                                           "{{json .}}", "shop_web"]).stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def image_id(self, host: LabHost, ref: str) -> str:
        return self.lab.exec(host, ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                             check=False).stdout.decode().strip()

    def run_test_web(self, image: str, name: str = "web") -> None:
        """TEST runs `web` (or `api`) from this image: what a release takes."""
        self.lab.exec(self.test, ["docker", "rm", "-f", name], check=False)
        self.lab.exec(self.test, ["docker", "run", "-d", "--name", name, "--init", image])

    def wait_converged(self, replicas: int, image: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [t for t in self.tasks() if t["DesiredState"] == "Running"
                       and t["CurrentState"].startswith("Running")
                       and t["Image"].split("@")[0] == image]
            if len(running) == replicas:
                return
            time.sleep(1)
        raise AssertionError(f"shop_web did not reach {replicas} x {image}: {self.tasks()}")


def get(address: str, port: int = PORT, timeout: float = 2.0) -> str:
    """One HTTP GET /: the body's first line, "refused" (no task on that node), or "error:..."
    for a request that connected and then failed."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error: connect {exc}"
    try:
        with sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError as exc:
        return f"error: {exc}"
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    if not head.startswith("HTTP/1.") or " 200 " not in head.split("\r\n")[0]:
        return f"error: {head.splitlines()[0] if head else 'empty reply'}"
    return body.strip().splitlines()[0] if body.strip() else "error: empty body"


def form_swarm(lab: Lab, nodes: dict[str, LabHost]) -> None:
    manager = nodes["manager"]
    ip = lab.ip_address(manager)
    lab.exec(manager, ["docker", "swarm", "init", "--advertise-addr", ip])
    token = lab.exec(manager, ["docker", "swarm", "join-token", "-q", "worker"]).stdout.decode()
    for name, host in nodes.items():
        if name != "manager":
            join(lab, host, token.strip(), ip)


def join(lab: Lab, host: LabHost, token: str, manager_ip: str) -> None:
    lab.exec(host, ["docker", "swarm", "join", "--advertise-addr", lab.ip_address(host),
                    "--token", token, f"{manager_ip}:2377"])


def deploy_stack(lab: Lab, manager: LabHost, image: str) -> None:
    lab.exec(manager, ["mkdir", "-p", STACK_DIR])
    lab.exec(manager, ["sh", "-c", 'cat > "$1"', "-", f"{STACK_DIR}/stack.yml"],
             input=STACK.format(image=image, port=PORT, api_port=API_PORT).encode())
    lab.exec(manager, ["docker", "stack", "deploy", "--resolve-image", "never", "-c",
                       f"{STACK_DIR}/stack.yml", "shop"])
