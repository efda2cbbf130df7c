"""config guards: each guarded config file must name its own environment (source note 000:
TEST's base_url named PROD, and TEST showed PROD's data). The fix is the release's own guard
step: a backup beside the file, the file rewritten in place (bind mounts see it), and the
services that read it restarted."""

from __future__ import annotations

from ..config.schema import Guard
from ..flows.guards import backup_path, guard_steps
from ..guards import GuardError, check_json, names_self
from ..state import ABSENT, read_file
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "guards"


def named_env(ctx: HostContext, value: str) -> str | None:
    """The other environment whose address `value` names, if any."""
    for name, env in ctx.cfg.environments.items():
        if name != ctx.env and names_self(value, env.own_address):
            return name
    return None


async def _fix(ctx: HostContext, guard: Guard, fixed: str | None) -> Fix | None:
    rid = f"doctor-{ctx.stamp}"
    steps = await guard_steps(ctx.cfg, ctx.pool, ctx.env, rid)
    step = next((s for s in steps if s.host == ctx.label and s.params.get("file") == guard.file
                 and s.params.get("key") == guard.key), None)
    if step is None:
        return None
    restart = f", restart {', '.join(guard.restart)}" if guard.restart else ""
    return Fix(f"set {guard.key} to {fixed} in place, keeping a backup at "
               f"{backup_path(guard, rid)}{restart}", safe=True, apply=step.run,
               commands=step.commands)


async def _one(ctx: HostContext, guard: Guard) -> Finding:
    subject = f"{guard.file} {guard.key}"
    res = await ctx.run(read_file(guard.file))
    if res.exit_status == ABSENT:
        return warn(NAME, subject, f"{guard.file} does not exist on this host: nothing to "
                    "guard (is the path right?)", evidence=[ctx.evidence(res)])
    if not res.ok:
        return fail(NAME, subject, f"cannot read {guard.file}", evidence=[ctx.evidence(res)])
    ev = [ctx.evidence(res)]
    try:
        verdict = check_json(res.stdout, guard.key_path, ctx.own_address)
    except GuardError as exc:
        return fail(NAME, subject, f"{guard.file}: {exc}", evidence=ev,
                    fix=Fix(f"fix the file, or the guard on {guard.key} in ferryman.yml"))
    data = {"file": guard.file, "key": guard.key, "value": verdict.value,
            "expected": verdict.expected}
    if verdict.ok:
        return ok(NAME, subject, f"{guard.key} = {verdict.value}: names {ctx.env}", data=data)
    other = named_env(ctx, str(verdict.value))
    whose = f"names {other}" if other else "does not name"
    return fail(NAME, subject, f"cross-environment pollution: {guard.key} = {verdict.value} "
                f"{whose}, not {ctx.env} ({verdict.expected})"
                + (f": {ctx.env} works on {other}'s data" if other else ""),
                evidence=ev, fix=await _fix(ctx, guard, verdict.fixed_value),
                data={**data, "names": other, "fixed_value": verdict.fixed_value})


async def run(ctx: HostContext) -> list[Finding]:
    guards = [g for g in ctx.cfg.guards if g.applies_to(ctx.env)]
    if not guards:
        return [ok(NAME, "-", "no guard in ferryman.yml applies to this environment")]
    return [await _one(ctx, g) for g in guards]
