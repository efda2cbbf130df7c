"""The health gate: a service is healthy when its container runs and its check passes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..config.schema import Health
from ..docker import commands as dc
from ..docker.inspect import parse_containers
from ..errors import HealthFailed
from ..transport import Host

LOG_LINES = 40


@dataclass
class Verdict:
    healthy: bool
    detail: str


async def probe(host: Host, container: str, health: Health | None) -> Verdict:
    """One look at the service: container state, then Docker health or the HTTP check."""
    res = await host.run(dc.inspect_containers([container]), timeout=30)
    facts = parse_containers(res.stdout).get(container)
    if facts is None:
        return Verdict(False, f"container {container} does not exist")
    if not facts.running:
        return Verdict(False, f"container {container} is {facts.status} (exit {facts.exit_code})")
    if health is None:
        return Verdict(True, "running")
    if health.docker:
        if facts.health is None:
            return Verdict(False, f"container {container} has no Docker healthcheck")
        return Verdict(facts.health == "healthy", f"docker health: {facts.health}")
    if health.http:
        r = await host.run(dc.http_probe(health.http, health.timeout), timeout=health.timeout + 10)
        if r.ok:
            return Verdict(True, f"GET {health.http} ok")
        why = (r.stderr or r.stdout).strip().splitlines()
        return Verdict(False, f"GET {health.http} failed: {why[-1] if why else r.exit_status}")
    return Verdict(True, "running")


async def last_lines(host: Host, container: str, lines: int = LOG_LINES) -> str:
    """The container's last log lines (stdout and stderr as docker logs replays them), or a
    sentence saying it printed none or why they could not be read: never an empty string."""
    logs = await host.run(dc.container_logs(container, tail=lines), timeout=30)
    if not logs.ok:
        why = (logs.stderr or logs.stdout).strip().splitlines()
        return (f"the log of {container} could not be read: "
                f"{why[-1] if why else f'exit {logs.exit_status}'}")
    text = (logs.stdout + ("\n" if logs.stdout and logs.stderr else "") + logs.stderr).strip()
    if not text:
        return f"{container} printed no log lines"
    return f"last {lines} log lines of {container}:\n{text}"


async def wait_healthy(host: Host, service: str, container: str, health: Health | None, *,
                       env: str) -> str:
    """Waits until the service is healthy or its retries run out; then shows its last logs."""
    retries = health.retries if health else 15
    interval = health.interval if health else 1.0
    if health and health.start_period:
        await asyncio.sleep(health.start_period)
    verdict = Verdict(False, "not checked")
    for attempt in range(1, retries + 1):
        verdict = await probe(host, container, health)
        if verdict.healthy:
            return f"{verdict.detail} (attempt {attempt})"
        if attempt < retries:
            await asyncio.sleep(interval)
    # Read now: an undo may remove the container, and its log with it.
    evidence = await last_lines(host, container)
    raise HealthFailed(
        f"{service} on {host.label} is not healthy after {retries} checks: {verdict.detail}",
        evidence=evidence,
        hint=f"the lines above are the container's own; while it exists, `ferryman logs {env} "
             f"{service} --tail 200` shows more",
    )
