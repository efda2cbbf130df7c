"""Runs the checks on every host at once, applies the safe fixes as logged steps, and runs
the checks they touch again, so the report shows the fix worked rather than claims it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..errors import EXIT_FLOW_FAILED, EXIT_OK, EXIT_PRECONDITION
from ..events import EventBus
from ..flows.lock import env_lock
from ..hosts import HostPool
from ..steps import Step, run_steps
from ..transport import CommandFailed, TransportError
from . import (
    certs,
    clock,
    config_guards,
    containers,
    disk,
    firewall,
    host,
    leaks,
    logs,
    networks,
    ports,
    reach,
    resources,
    runmode,
    swarm,
)
from .context import HostContext
from .findings import Evidence, Finding, Fix, Status, fail, warn, worst

Check = Callable[[HostContext], Awaitable[list[Finding]]]

# In the order a person would look: the host, then what runs, then the paths to it.
CHECKS: dict[str, Check] = {
    host.NAME: host.run,
    runmode.NAME: runmode.run,
    containers.NAME: containers.run,
    resources.NAME: resources.run,
    logs.NAME: logs.run,
    networks.NAME: networks.run,
    firewall.NAME: firewall.run,
    ports.NAME: ports.run,
    reach.NAME: reach.run,
    config_guards.NAME: config_guards.run,
    leaks.NAME: leaks.run,
    disk.NAME: disk.run,
    clock.NAME: clock.run,
    certs.NAME: certs.run,
    swarm.NAME: swarm.run,
}


def stamp_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


@dataclass
class HostReport:
    env: str
    host: str
    reachable: bool = True
    findings: list[Finding] = field(default_factory=list)


@dataclass
class FixRecord:
    finding: Finding
    applied: bool = False
    result: str | None = None
    error: str | None = None
    after: list[Finding] = field(default_factory=list)  # its check, run again
    rechecked: dict[str, str] = field(default_factory=dict)  # check -> worst status after

    @property
    def proven(self) -> bool:
        """Applied, the check that found it (and those it asked for) has no FAIL now, and it
        no longer says what it said (a WARN that stays the same was not mended)."""
        f = self.finding
        same = any(x.subject == f.subject and x.status == f.status and x.summary == f.summary
                   for x in self.after)
        return self.applied and bool(self.rechecked) and not same and all(
            s != Status.FAIL for s in self.rechecked.values())

    def to_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "env": f.env, "host": f.host, "check": f.check, "subject": f.subject,
            "before": {"status": str(f.status), "summary": f.summary},
            "fix": f.fix.text if f.fix else "", "applied": self.applied,
            "result": self.result, "error": self.error, "proven": self.proven,
            "rechecked": self.rechecked,
            "after": [{"status": str(x.status), "subject": x.subject, "summary": x.summary}
                      for x in self.after],
        }


@dataclass
class Report:
    hosts: list[HostReport]
    fixes: list[FixRecord] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for h in self.hosts for f in h.findings]

    @property
    def pending(self) -> list[Finding]:
        """Findings that `--fix` would mend."""
        return [f for f in self.findings
                if f.status != Status.OK and f.fix is not None and f.fix.automatic]

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Status}
        for f in self.findings:
            out[str(f.status)] += 1
        return out

    @property
    def exit_code(self) -> int:
        if any(not h.reachable for h in self.hosts):
            return EXIT_PRECONDITION
        if any(f.status == Status.FAIL for f in self.findings):
            return EXIT_FLOW_FAILED
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == EXIT_OK, "exit_code": self.exit_code,
            "summary": self.counts(),
            "hosts": [{"env": h.env, "host": h.host, "reachable": h.reachable,
                       "status": str(worst([f.status for f in h.findings]))}
                      for h in self.hosts],
            "findings": [f.to_dict() for f in self.findings],
            "fixes": [x.to_dict() for x in self.fixes],
        }


async def _guarded(ctx: HostContext, name: str) -> list[Finding]:
    """One check; a check that breaks reports it instead of hiding the other checks."""
    try:
        found = await CHECKS[name](ctx)
    except TransportError as exc:
        exc.add_note(f"during the {name} check")  # where the host was lost
        raise
    except Exception as exc:
        found = [warn(name, "-", f"the check could not finish: {type(exc).__name__}: {exc}")]
    return [ctx.stamp_finding(f) for f in found]


def unreachable(env: str, label: str, exc: TransportError) -> HostReport:
    where = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
    finding = fail(host.NAME, "ssh", f"cannot reach {label}: {exc}{where}",
                   evidence=[Evidence("ssh", str(exc))],
                   fix=Fix(exc.hint or "check the host's address, port, key and known_hosts "
                           "in ferryman.yml, and that sshd runs there"))
    finding.env, finding.host = env, label
    return HostReport(env, label, reachable=False, findings=[finding])


async def run_checks(ctx: HostContext, names: list[str]) -> list[Finding]:
    """The named checks on one host, findings in check order."""
    if not await ctx.docker_usable() and names != [host.NAME]:
        found = await _guarded(ctx, host.NAME) if host.NAME in names else []
        skipped = [n for n in names if n != host.NAME]
        note = warn(host.NAME, "checks", f"skipped {', '.join(skipped)}: Docker is not usable "
                    "on this host (see above)")
        return [*found, ctx.stamp_finding(note)]
    tasks = [asyncio.ensure_future(_guarded(ctx, n)) for n in names]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        # The host is gone (or the run is cancelled): the other checks stop now rather than
        # each waiting for its own deadline.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [f for group in results for f in group]


async def examine_host(cfg: Config, pool: HostPool, env: str, label: str, names: list[str],
                       *, stamp: str, domain: str | None = None,
                       tls_port: int = 443) -> HostReport:
    await pool.resolve(env)
    ctx = HostContext(cfg, pool, env, label, stamp=stamp, domain=domain, tls_port=tls_port)
    t0 = time.monotonic()
    try:
        await ctx.host.run(["true"], timeout=cfg.ssh.connect_timeout + 30, check=True)
        ctx.connect_seconds = round(time.monotonic() - t0, 3)
        findings = await run_checks(ctx, names)
    except TransportError as exc:
        return unreachable(env, label, exc)
    except CommandFailed as exc:
        return unreachable(env, label, TransportError(label, str(exc)))
    return HostReport(env, label, findings=findings)


async def examine(cfg: Config, pool: HostPool, envs: list[str], names: list[str] | None = None,
                  *, stamp: str | None = None, domain: str | None = None,
                  tls_port: int = 443) -> Report:
    chosen = [n for n in CHECKS if names is None or n in names]
    stamp = stamp or stamp_now()
    jobs = [examine_host(cfg, pool, env, label, chosen, stamp=stamp, domain=domain,
                         tls_port=tls_port)
            for env in envs for label, _ in pool.hosts(env)]
    report = Report(list(await asyncio.gather(*jobs)))
    if clock.NAME in chosen:
        clock.compare(report.hosts)  # hosts against each other, once all are measured
    return report


async def apply_fixes(cfg: Config, pool: HostPool, report: Report, bus: EventBus, *,
                      stamp: str, domain: str | None = None, tls_port: int = 443) -> Report:
    """Runs every safe fix as a step (logged, timed, raw output on failure), then the checks
    they concern again; their new findings replace the old ones in the report."""
    order = list(CHECKS)
    todo = sorted(report.pending, key=lambda f: (f.env, f.host, order.index(f.check)))
    records = [FixRecord(f) for f in todo]
    steps = []
    for rec in records:
        f = rec.finding
        assert f.fix is not None and f.fix.apply is not None
        steps.append(Step(f"fix {f.check} ({f.subject}) on {f.env}/{f.host}", f.fix.apply,
                          params={"env": f.env, "fix": f.fix.text}, host=f.host,
                          commands=f.fix.commands))
    if not steps:
        return report
    # Fixes change hosts (config files, firewall tables): under each environment's lock.
    envs = dict.fromkeys(r.finding.env for r in records)
    locks = [env_lock(cfg, pool, env, f"doctor --fix {env}") for env in envs]
    outcome = await run_steps(bus, steps, {"fixes": len(steps)}, locks=locks)
    for rec, step in zip(records, steps, strict=True):
        if step.name in outcome.results:
            rec.applied, rec.result = True, str(outcome.results[step.name])
        elif outcome.failed_step and outcome.failed_step.endswith(step.name):
            rec.error = outcome.error
        else:
            rec.error = "not applied: an earlier fix failed"
    report.fixes = records
    for hr in report.hosts:
        mine = [r for r in records if r.finding.host == hr.host and r.finding.env == hr.env
                and (r.applied or r.error)]
        if not mine:
            continue
        names = {r.finding.check for r in mine}
        for r in mine:
            names.update(r.finding.fix.recheck if r.finding.fix else ())
        again = [n for n in order if n in names]
        ctx = HostContext(cfg, pool, hr.env, hr.host, stamp=stamp, domain=domain,
                          tls_port=tls_port)
        try:
            fresh = await run_checks(ctx, again)
        except TransportError as exc:
            hr.reachable = False
            hr.findings.append(unreachable(hr.env, hr.host, exc).findings[0])
            continue
        hr.findings = [f for f in hr.findings if f.check not in again] + fresh
        hr.findings.sort(key=lambda f: order.index(f.check))
        for r in mine:
            checks = [r.finding.check, *(r.finding.fix.recheck if r.finding.fix else ())]
            r.after = [x for x in fresh if x.check == r.finding.check
                       and x.subject == r.finding.subject] or [
                x for x in fresh if x.check == r.finding.check]
            r.rechecked = {c: str(worst([x.status for x in fresh if x.check == c]))
                           for c in checks if any(x.check == c for x in fresh)}
    return report
