"""Captures what real hosts answer to `ferryman init`'s reads, for tests/unit/test_init_scene.py.

    python tests/unit/capture_init.py

Starts the demo's TEST (bookworm: Docker 20.10, docker-compose v1) and PROD (trixie: Docker
26.1, the `docker compose` v2 plugin), adds on both a compose project `rag` with a search
engine and a database (images retagged from the app image: only their names matter to init),
a cache with a named volume, a node-exporter; on TEST a worker writing to a bind-mounted
folder and a stopped one-off job; on PROD a portainer with its own volume. Runs init's survey
through hosts that record each command and its answer, and writes
tests/unit/data/flows/init_scene.json ({"source", "calls"}, as capture.py does). Removes its
hosts at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferryman.config.schema import HostSpec
from ferryman.hosts import HostPool, target_for
from ferryman.init import request
from ferryman.init.survey import survey
from ferryman.lab.demo import ADDRESSES, down, up
from ferryman.transport import Host, Result, SshHost

OUT = Path(__file__).parent / "data" / "flows" / "init_scene.json"
KINDS = {"test": "bookworm", "prod": "trixie"}
RAG = """\
version: "3.7"
services:
  es01:
    image: elasticsearch:8.11.3
    volumes: ["esdata:/usr/share/elasticsearch/data"]
  mysql:
    image: mysql:8.0
    volumes: ["mysql_data:/var/lib/mysql"]
volumes:
  esdata:
  mysql_data:
"""
BOTH = ("for t in elasticsearch:8.11.3 mysql:8.0 redis:7-alpine prom/node-exporter:v1.8.0 "
        "portainer/portainer-ce:2.19.4; do docker tag ferryman-app:v1 $t; done"
        " && mkdir -p /opt/rag && docker run -d --name shop-cache -v shopcache:/data"
        " redis:7-alpine >/dev/null"
        " && docker run -d --name node-exporter -v /proc:/host/proc:ro"
        " prom/node-exporter:v1.8.0 >/dev/null")
TEST_ONLY = ("mkdir -p /srv/shop/files && docker run -d --name worker -v /srv/shop/files:/files"
             " ferryman-app:v2 >/dev/null"
             " && docker run --name one-off-job ferryman-app:v2 true")
PROD_ONLY = ("docker run -d --name portainer -v portainer_data:/data"
             " -v /var/run/docker.sock:/var/run/docker.sock portainer/portainer-ce:2.19.4"
             " >/dev/null")


class Recorder:
    """A real host that also keeps each command and its answer."""

    def __init__(self, inner: Host, calls: list[dict[str, Any]]) -> None:
        self.inner, self.calls, self.label = inner, calls, inner.label

    async def run(self, argv: Sequence[str], *, timeout: float | None = None,
                  input: bytes | None = None, check: bool = False) -> Result:
        res = await self.inner.run(argv, timeout=timeout, input=input, check=check)
        self.calls.append({"host": self.label, "argv": list(argv),
                           "exit_status": res.exit_status, "stdout": res.stdout,
                           "stderr": res.stderr})
        return res

    async def open(self, argv: Sequence[str], *,  # type: ignore[no-untyped-def]
                   idle_timeout: float | None = None):
        raise AssertionError(f"init streams nothing: {list(argv)}")

    async def close(self) -> None:
        await self.inner.close()


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ferryman-capture-init-"))
    prefix = "ferryman-capture-init"
    demo = up(workdir / "demo", prefix=prefix, kinds=KINDS)
    try:
        for role, host in demo.hosts.items():
            demo.lab.sh(host, BOTH + " && " + (TEST_ONLY if role == "test" else PROD_ONLY))
            demo.lab.exec(host, ["sh", "-c", 'cat > /opt/rag/docker-compose.yml'],
                          input=RAG.encode())
            demo.lab.exec(host, ["sh", "-c", 'cd /opt/rag && exec "$@"', "-",
                                 *host.compose, "up", "-d"])
        req = request.build(
            [f"{r}=root@127.0.0.1:{h.port}" for r, h in demo.hosts.items()],
            [f"{r}={ADDRESSES[r]}" for r in demo.hosts], identity_file=str(demo.lab.key_path),
            known_hosts=str(demo.lab.known_hosts))
        cfg = request.connect_config(req)
        calls: list[dict[str, Any]] = []

        def make(env: str, spec: HostSpec) -> Host:
            return Recorder(SshHost(target_for(cfg, spec), cfg.ssh.command_timeout), calls)

        async def go() -> None:
            pool = HostPool(cfg, make_host=make)
            try:
                await survey(pool, req)
            finally:
                await pool.close()

        asyncio.run(go())
        versions = {
            f"{role}-1": demo.lab.sh(h, "docker version --format '{{.Server.Version}}'").strip()
            for role, h in demo.hosts.items()}
        source = {"captured": datetime.now(UTC).isoformat(timespec="seconds"),
                  "hosts": {k: {"docker": v, "compose": "v1" if k == "test-1" else "v2"}
                            for k, v in versions.items()},
                  "ports": {f"{r}-1": h.port for r, h in demo.hosts.items()},
                  "scene": __doc__.split("\n\n")[2].replace("\n", " ")}
        OUT.write_text(json.dumps({"source": source, "calls": calls}, indent=1) + "\n")
        print(f"wrote {OUT} ({len(calls)} calls)")
    finally:
        down(workdir / "demo", prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
