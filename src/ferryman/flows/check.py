"""`ferryman check`: can ferryman work on each host? SSH, Docker, compose, disk."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass

from ..docker import commands as dc
from ..docker import compose
from ..hosts import HostPool
from ..transport import TransportError


@dataclass
class HostCheck:
    env: str
    host: str
    ssh_ok: bool = False
    connect_seconds: float | None = None
    docker_version: str | None = None
    docker_api: str | None = None
    docker_error: str | None = None
    compose: str | None = None  # "docker compose 2.x" / "docker-compose 1.29.2" / None
    docker_root: str | None = None
    disk_total: int | None = None
    disk_free: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.ssh_ok and self.docker_version is not None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


async def check_host(pool: HostPool, env: str, label: str) -> HostCheck:
    out = HostCheck(env, label)
    host = pool.host(env, label)
    t0 = time.monotonic()
    try:
        await host.run(["true"], timeout=30, check=True)
        out.ssh_ok = True
        out.connect_seconds = round(time.monotonic() - t0, 3)
        ver = await host.run(dc.docker_version(), timeout=30)
        if ver.ok:
            server = (json.loads(ver.stdout).get("Server") or {})
            out.docker_version = server.get("Version")
            out.docker_api = server.get("ApiVersion")
        else:
            lines = (ver.stderr or ver.stdout).strip().splitlines()
            out.docker_error = lines[-1] if lines else f"exit {ver.exit_status}"
        tool = await compose.detect(host)
        out.compose = tool.label if tool else None
        root = await host.run(dc.docker_root_dir(), timeout=30)
        if root.ok and root.stdout.strip():
            out.docker_root = root.stdout.strip()
            df = dc.parse_df((await host.run(dc.disk_free(out.docker_root), timeout=30)).stdout)
            if df:
                out.disk_total, out.disk_free = df
    except TransportError as exc:
        out.error = str(exc)
    except Exception as exc:  # a host answering garbage must not hide the other hosts
        out.error = f"{type(exc).__name__}: {exc}"
    return out


async def check(pool: HostPool, envs: list[str]) -> list[HostCheck]:
    jobs = [check_host(pool, env, label) for env in envs for label, _ in pool.hosts(env)]
    return list(await asyncio.gather(*jobs))
