"""containers: not running, restarting in a loop, exit code, OOM-killed, unhealthy, with the
last log lines as evidence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ..docker import commands as dc
from ..docker.inspect import ContainerFacts, parse_containers
from ..transport import Result
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok, warn

NAME = "containers"
LOG_LINES = 20
LOOP_RESTARTS = 3  # this many restarts, the last one less than LOOP_WINDOW ago: a loop
LOOP_WINDOW = 120.0


def age_seconds(iso: str, now: datetime | None = None) -> float | None:
    """Seconds since one of Docker's RFC 3339 timestamps (nanoseconds, Z)."""
    if not iso or iso.startswith("0001-"):
        return None
    head, _, frac = iso.rstrip("Z").partition(".")
    try:
        when = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in frac if ch.isdigit())[:6]
    seconds = (now or datetime.now(UTC)) - when
    return seconds.total_seconds() - (int(digits.ljust(6, "0")) / 1e6 if digits else 0)


def health_output(facts: ContainerFacts) -> str:
    log = ((facts.raw.get("State") or {}).get("Health") or {}).get("Log") or []
    if not log:
        return ""
    last = log[-1]
    return f"exit {last.get('ExitCode')}: {(last.get('Output') or '').strip()}"


def restart_policy(facts: ContainerFacts) -> str:
    policy = (facts.raw.get("HostConfig") or {}).get("RestartPolicy") or {}
    return policy.get("Name") or "no"


def verdict(f: ContainerFacts, now: datetime | None = None) -> tuple[str, str, str]:
    """(status, summary, kind) of one container from its inspect facts."""
    started = age_seconds(f.started_at, now)
    looping = f.status == "restarting" or (
        f.restarts >= LOOP_RESTARTS and started is not None and started < LOOP_WINDOW)
    oom = " and was killed for lack of memory (OOM)" if f.oom_killed else ""
    if looping:
        code = "" if f.running else f", last exit code {f.exit_code}"
        return ("FAIL", f"restarting in a loop: {f.restarts} restarts so far{code}{oom} "
                f"(restart policy {restart_policy(f)})", "restart-loop")
    if f.status in ("exited", "dead", "created"):
        what = "never started" if f.status == "created" else f"exited with code {f.exit_code}"
        return "FAIL", f"not running: {what}{oom}", "oom" if f.oom_killed else "stopped"
    if f.status == "paused":
        return "WARN", "paused", "paused"
    if f.health == "unhealthy":
        return "FAIL", "running but unhealthy", "unhealthy"
    if f.health == "starting":
        return "WARN", "running, health check still starting", "starting"
    if f.restarts:
        return ("WARN", f"running, but restarted {f.restarts} times (last exit code "
                f"{f.exit_code}{oom})", "restarted")
    health = f", {f.health}" if f.health else ""
    return "OK", f"running{health}", "running"


def _fix_for(kind: str, f: ContainerFacts) -> Fix | None:
    if kind == "oom":
        return Fix(f"give it more memory (`docker update --memory ... {f.name}`) or find what "
                   f"grew, then `docker start {f.name}`")
    if kind == "restart-loop":
        return Fix(f"read the log lines below; the container exits right after it starts. "
                   f"Stop the loop with `docker update --restart no {f.name}` while you mend it")
    if kind == "stopped":
        return Fix(f"read the log lines below, then `docker start {f.name}`")
    if kind == "unhealthy":
        return Fix("read the health check's last output and the log lines below")
    return None


async def _logs(ctx: HostContext, name: str) -> Evidence:
    res = await ctx.run(dc.container_logs(name, tail=LOG_LINES), timeout=30)
    return ctx.evidence(res)


async def _between_restarts(ctx: HostContext, f: ContainerFacts, res: Result | None
                            ) -> tuple[ContainerFacts, Result | None]:
    for _ in range(6):
        await asyncio.sleep(0.5)
        again = await ctx.run(dc.inspect_containers([f.name]))
        now = parse_containers(again.stdout).get(f.name)
        if now is not None and not now.running:
            return now, again
    return f, res


async def _one(ctx: HostContext, service: str, container: str, f: ContainerFacts | None,
               res: Result | None) -> Finding:
    if f is None:
        return warn(NAME, service, f"container {container} does not exist on this host",
                    evidence=[ctx.evidence(res)] if res else [], data={"state": "absent"})
    status, summary, kind = verdict(f)
    if kind == "restart-loop" and f.running:
        # Caught in the moment between two restarts: its exit code reads 0 then. Looking
        # again when it is down gives the code it really exits with.
        f, res = await _between_restarts(ctx, f, res)
        status, summary, kind = verdict(f)
    data = {"state": f.status, "restarts": f.restarts, "exit_code": f.exit_code,
            "oom_killed": f.oom_killed, "health": f.health, "kind": kind}
    if status == "OK":
        return ok(NAME, service, f"{container}: {summary}", data=data)
    ev = [ctx.evidence(res, f"{container}: Status={f.status} RestartCount={f.restarts} "
                            f"ExitCode={f.exit_code} OOMKilled={str(f.oom_killed).lower()} "
                            f"Health={f.health or '-'} StartedAt={f.started_at} "
                            f"FinishedAt={f.finished_at}")] if res else []
    if f.health == "unhealthy" and (hc := health_output(f)):
        ev.append(Evidence(f"last health check of {container}", hc))
    ev.append(await _logs(ctx, container))
    maker = fail if status == "FAIL" else warn
    return maker(NAME, service, f"{container}: {summary}", evidence=ev, fix=_fix_for(kind, f),
                 data=data)


def parse_ps(stdout: str) -> dict[str, str]:
    """name -> status text from `docker ps -a --format '{{.Names}}\\t{{.Status}}'`."""
    out = {}
    for line in stdout.splitlines():
        name, sep, status = line.partition("\t")
        if sep:
            out[name.strip()] = status.strip()
    return out


async def run(ctx: HostContext) -> list[Finding]:
    res, facts = await ctx.services()
    out = list(await asyncio.gather(*(
        _one(ctx, p.service, p.container, facts.get(p.container), res)
        for p in ctx.placements)))
    # Other containers on the host that are in trouble: note 000's stack (ES, MySQL...) is
    # often not ferryman's to release, yet its crash loop is what breaks the app.
    ps = await ctx.cached(dc.all_containers())
    mine = {p.container for p in ctx.placements}
    for name, status in sorted(parse_ps(ps.stdout).items()):
        if name in mine or ".ferryman-" in name:
            continue
        if status.startswith("Restarting") or "(unhealthy)" in status:
            out.append(warn(NAME, name, f"not a service in ferryman.yml, but: {status}",
                            evidence=[ctx.evidence(ps, f"{name}\t{status}"),
                                      await _logs(ctx, name)],
                            data={"state": status, "service": False}))
    return out
