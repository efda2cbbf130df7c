"""Guard steps: make each config file on TO name TO itself, keeping a backup, and restart
what reads it. The pure check lives in ferryman.guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..config import Config
from ..config.schema import Guard
from ..docker import commands as dc
from ..errors import FlowFailed
from ..guards import GuardError, check_json
from ..hosts import HostPool
from ..state import ABSENT, read_file, write_file
from ..steps import Step
from ..transport import CommandFailed, Host
from ..transport.base import short_command
from ..undo import UndoContext, undoer
from .bluegreen import live_health
from .health import wait_healthy


def backup_path(guard: Guard, rid: str) -> str:
    return f"{guard.file}.ferryman-{rid}.bak"


async def _restart(cfg: Config, pool: HostPool, env: str, host_label: str, host: Host,
                   services: list[str]) -> list[str]:
    done = []
    await pool.resolve(env)
    for place in pool.placements(env, services):
        if place.host != host_label:
            continue
        await host.run(dc.restart_container(place.container, None), timeout=120,
                       check=True)
        health = await live_health(host, cfg.services[place.service], place.container)
        await wait_healthy(host, place.service, place.container, health, env=place.env)
        done.append(place.service)
    return done


def guard_step(cfg: Config, env: str, host_label: str, host: Host, guard: Guard, rid: str,
               restart: Callable[[], Awaitable[list[str]]] | None = None,
               containers: dict[str, str] | None = None) -> Step:
    """`restart` restarts what reads the file; None when the caller starts them itself.
    containers: service -> its container on this host, for the lines the plan shows."""
    own = cfg.environments[env].own_address
    backup = backup_path(guard, rid)
    read, keep, rewrite = read_file(guard.file), ["cp", "-p", guard.file, backup], \
        write_file(guard.file)

    async def run() -> str:
        res = await host.run(read, timeout=30)
        if res.exit_status == ABSENT:
            return f"{guard.file} does not exist on {host_label}: nothing to guard"
        if not res.ok:
            raise CommandFailed(res, f"cannot read {guard.file} on {host_label}")
        try:
            verdict = check_json(res.stdout, guard.key_path, own)
        except GuardError as exc:
            raise FlowFailed(f"{guard.file} on {host_label}: {exc}", host=host_label,
                             hint=f"fix the file, or the guard on {guard.key}") from exc
        if verdict.ok:
            return f"{guard.key} = {verdict.value}: names {env}"
        await host.run(keep, timeout=30, check=True)
        # In place (same inode): a container that bind-mounts the file sees the change.
        await host.run(rewrite, input=(verdict.fixed_text or "").encode(), timeout=30,
                       check=True)
        restarted = await restart() if restart else []
        again = ", restarted " + ", ".join(restarted) if restarted else ""
        return (f"{guard.key}: {verdict.value} -> {verdict.fixed_value} "
                f"(backup {backup}){again}")

    async def undo() -> None:
        if await restore(host, backup, guard.file) and restart:
            await restart()

    # The commands the step runs; the last ones only when the key names another address.
    when = f"  # when {guard.key} names neither {own} nor localhost"
    restarts = ([dc.restart_container((containers or {}).get(n, n), None)
                 for n in guard.restart] if restart else [])
    cmds = [short_command(read), short_command(keep) + when, short_command(rewrite) + when,
            *(short_command(a) + when for a in restarts)]
    data = {"kind": "guard", "host": host_label, "file": guard.file, "backup": backup,
            "restart": guard.restart if restart else []}
    return Step(f"guard {guard.key} in {guard.file} on {host_label}", run, undo,
                undo_data=data,
                params={"file": guard.file, "key": guard.key, "must_name": own,
                        "restart": guard.restart},
                host=host_label, commands=cmds, undo_if_failed=True)


# The backup exists only once the file was about to be rewritten: no backup, nothing to undo.
_RESTORE = '[ -e "$1" ] || exit 66; cat "$1" > "$2"'


async def restore(host: Host, backup: str, file: str) -> bool:
    """Puts the backup back in place (same inode); False when there is none."""
    res = await host.run(["sh", "-c", _RESTORE, "ferryman-restore", backup, file], timeout=30)
    if res.exit_status == ABSENT:
        return False
    if not res.ok:
        raise CommandFailed(res, f"cannot put {backup} back on {host.label}")
    return True


@undoer("guard")
async def _undo_guard(ctx: UndoContext, d: dict[str, Any]) -> None:
    """From a journal: what the step's own undo does, the same way."""
    host = ctx.host(d["host"])
    if await restore(host, d["backup"], d["file"]) and d.get("restart"):
        await _restart(ctx.cfg, ctx.pool, ctx.env, d["host"], host, d["restart"])


async def guard_steps(cfg: Config, pool: HostPool, env: str, rid: str) -> list[Step]:
    steps = []
    await pool.resolve(env)
    for guard in cfg.guards:
        if not guard.applies_to(env):
            continue
        for spec in cfg.environments[env].hosts:
            host = pool.host(env, spec.label)

            async def restart(host: Host = host, label: str = spec.label,
                              names: list[str] = guard.restart) -> list[str]:
                return await _restart(cfg, pool, env, label, host, names)

            here = {p.service: p.container for p in pool.placements(env, guard.restart)
                    if p.host == spec.label}
            steps.append(guard_step(cfg, env, spec.label, host, guard, rid, restart, here))
    return steps
