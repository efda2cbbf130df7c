"""Steps that replace one service's container on a host, each with its undo.

Run mode keeps the old container (renamed, stopped, restart policy off) until the new one is
healthy; compose mode pins the image in an override file and brings up only that service;
bootstrap creates a container where there was none.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Any

from ..config.schema import Health
from ..docker import commands as dc
from ..docker import compose as dcompose
from ..docker import images as di
from ..docker.inspect import ComposeInfo, ContainerFacts, parse_containers
from ..docker.runspec import RunSpec
from ..state import compose_override_path, write_file
from ..steps import Step
from ..transport import Host
from ..undo import UndoContext, bound, undoer
from .health import wait_healthy


@dataclass
class Target:
    """One service on one host, and what the release will do with it."""

    service: str
    host_label: str
    host: Host
    container: str
    health: Health | None
    facts: ContainerFacts | None  # what runs there now (None: bootstrap)
    ctx: UndoContext


def kept_name(container: str, rid: str) -> str:
    return f"{container}.ferryman-{rid}"


def restart_policy(facts: ContainerFacts) -> str:
    policy = (facts.raw.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "on-failure" and policy.get("MaximumRetryCount"):
        return f"on-failure:{policy['MaximumRetryCount']}"
    return name


async def _inspect(host: Host, *names: str) -> dict[str, ContainerFacts]:
    res = await host.run(dc.inspect_containers(names), timeout=60)
    return parse_containers(res.stdout)


def _lines(*argvs: list[str]) -> list[str]:
    return [shlex.join(a) for a in argvs]


def aside_argvs(name: str, kept: str, policy: str) -> list[list[str]]:
    """Restart policy off (so no daemon restart revives it), stop, rename to `kept`."""
    off = [dc.set_restart_policy(name, "no")] if policy != "no" else []
    return [*off, dc.stop_container(name), dc.rename_container(name, kept)]


def back_argvs(kept: str, name: str, policy: str, *, rename: bool = True) -> list[list[str]]:
    """The inverse of aside_argvs: `kept` becomes `name` again, its policy back, started."""
    on = [dc.set_restart_policy(name, policy)] if policy != "no" else []
    return [*([dc.rename_container(kept, name)] if rename else []), *on,
            dc.start_container(name)]


_TIMEOUT = {"stop": 120, "start": 120}  # by docker subcommand; 60 s for the rest


async def _run_all(host: Host, argvs: list[list[str]]) -> None:
    for argv in argvs:
        await host.run(argv, timeout=_TIMEOUT.get(argv[1], 60), check=True)


async def set_aside(host: Host, name: str, kept: str, policy: str) -> None:
    """Stop `name` and rename it `kept`; safe to run again after a partial run."""
    now = await _inspect(host, name, kept)
    if name not in now:
        return
    await _run_all(host, aside_argvs(name, kept, policy))


async def bring_back(host: Host, kept: str, name: str, policy: str) -> None:
    """The inverse: `kept` becomes `name` again, with its restart policy, and starts."""
    now = await _inspect(host, name, kept)
    await _run_all(host, back_argvs(kept, name, policy, rename=kept in now and name not in now))


def _aside_lines(name: str, kept: str, policy: str) -> list[str]:
    return _lines(*aside_argvs(name, kept, policy))


def _back_lines(kept: str, name: str, policy: str) -> list[str]:
    return _lines(*back_argvs(kept, name, policy))


def retire_steps(t: Target, kept: str, *, gate_on_undo: bool = True) -> Step:
    """Stop the current container and set it aside under `kept`, restart policy off."""
    assert t.facts is not None
    policy = restart_policy(t.facts)
    name = t.container

    async def run() -> str:
        await set_aside(t.host, name, kept, policy)
        return f"{name} stopped and kept as {kept} (restart policy was {policy})"

    data = {"kind": "retire", "host": t.host_label, "service": t.service, "container": name,
            "kept": kept, "policy": policy, "gate": gate_on_undo}
    return Step(f"stop old {t.service} on {t.host_label}", run, bound(t.ctx, data),
                undo_data=data,
                params={"container": name, "kept_as": kept, "restart_policy": policy,
                        "image": t.facts.image_ref},
                host=t.host_label, commands=_aside_lines(name, kept, policy),
                undo_if_failed=True)


@undoer("retire")
async def _undo_retire(ctx: UndoContext, d: dict[str, Any]) -> str:
    host = ctx.host(d["host"])
    await bring_back(host, d["kept"], d["container"], d["policy"])
    if d.get("gate"):
        return await wait_healthy(host, d["service"], d["container"], ctx.health(d["service"]),
                             env=ctx.env)
    return "started"


def start_steps(t: Target, spec: RunSpec, what: str) -> Step:
    """Create and start the new container from its run spec; undo removes the container of
    that name unless it is the one that ran before (a set-aside one has another name)."""
    start = dc.start_container(t.container)

    async def run() -> str:
        res = await t.host.run(spec.create, timeout=120, check=True)
        created = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        for argv in spec.connects:
            await t.host.run(argv, timeout=60, check=True)
        await t.host.run(start, timeout=120, check=True)
        return f"{t.container} started ({created[:12]})"

    data = {"kind": "created", "host": t.host_label, "container": t.container,
            "keep_id": t.facts.id if t.facts is not None else ""}
    return Step(f"{what} {t.service} on {t.host_label}", run, bound(t.ctx, data),
                undo_data=data,
                params={"container": t.container}, host=t.host_label,
                commands=[*spec.command_lines(), shlex.join(start)], undo_if_failed=True)


@undoer("created")
async def _undo_created(ctx: UndoContext, d: dict[str, Any]) -> None:
    host = ctx.host(d["host"])
    now = (await _inspect(host, d["container"])).get(d["container"])
    if now is not None and now.id != d.get("keep_id"):
        await host.run(dc.remove_container(now.id, force=True), timeout=120, check=True)


def health_step(t: Target) -> Step:
    async def run() -> str:
        return await wait_healthy(t.host, t.service, t.container, t.health, env=t.ctx.env)

    params: dict[str, Any] = {"container": t.container}
    if t.health and t.health.http:
        params["http"] = t.health.http
    elif t.health and t.health.docker:
        params["check"] = "docker health"
    return Step(f"health of {t.service} on {t.host_label}", run, params=params,
                host=t.host_label)


async def _compose_up(host: Host, info: ComposeInfo, image: str, version: str | None,
                      override_path: str, v2: bool, env: dict[str, str] | None = None) -> None:
    text = dcompose.override(info.service, image, version, env)
    await host.run(write_file(override_path), input=text.encode(), timeout=60, check=True)
    await host.run(dcompose.up_service(info, override_path, v2), timeout=600, check=True)


async def resolve_previous(host: Host, ref: str, image_id: str) -> str:
    """The old ref when it still names the old image (clearer), else the image id."""
    res = await host.run(di.image_id(ref), timeout=30)
    return ref if res.ok and res.stdout.strip() == image_id else image_id


def compose_step(t: Target, project: str, new_ref: str, version: str | None, v2: bool,
                 env: dict[str, str] | None = None) -> Step:
    """env: the environment's own values (environments.*.env, services.*.env), set by the
    override both ways: they are TO's, whichever image runs."""
    assert t.facts is not None and t.facts.compose is not None
    info = t.facts.compose
    path = compose_override_path(project, info.project, info.service)
    old_ref, old_id = t.facts.image_ref, t.facts.image_id

    async def run() -> str:
        await _compose_up(t.host, info, new_ref, version, path, v2, env)
        return f"{info.project}/{info.service} up with {new_ref}"

    data = {"kind": "compose", "host": t.host_label, "service": t.service,
            "container": t.container, "compose": asdict(info), "old_ref": old_ref,
            "old_id": old_id, "version": version, "override": path, "v2": v2,
            "env": env or {}}

    cmds = [f"write {path}:\n" + dcompose.override(info.service, new_ref, version,
                                                    env).rstrip(),
            shlex.join(dcompose.up_service(info, path, v2))]
    return Step(f"compose up {t.service} on {t.host_label}", run, bound(t.ctx, data),
                undo_data=data,
                params={"project": info.project, "service": info.service,
                        "working_dir": info.working_dir, "files": info.config_files,
                        "image": new_ref},
                host=t.host_label, commands=cmds, undo_if_failed=True)

@undoer("compose")
async def _undo_compose(ctx: UndoContext, d: dict[str, Any]) -> str:
    host = ctx.host(d["host"])
    info = ComposeInfo(**d["compose"])
    previous = await resolve_previous(host, d["old_ref"], d["old_id"])
    await _compose_up(host, info, previous, d.get("version"), d["override"], d["v2"],
                      d.get("env") or None)
    return await wait_healthy(host, d["service"], d["container"], ctx.health(d["service"]),
                             env=ctx.env)


def revive_step(t: Target, kept: str, policy: str) -> Step:
    """Put a set-aside container back under its name and start it (rollback)."""
    name = t.container

    async def run() -> str:
        await bring_back(t.host, kept, name, policy)
        return f"{kept} is {name} again"

    data = {"kind": "revive", "host": t.host_label, "container": name, "kept": kept,
            "policy": policy}
    return Step(f"start previous {t.service} on {t.host_label}", run, bound(t.ctx, data),
                undo_data=data,
                params={"container": name, "from": kept, "restart_policy": policy},
                host=t.host_label, commands=_back_lines(kept, name, policy),
                undo_if_failed=True)


@undoer("revive")
async def _undo_revive(ctx: UndoContext, d: dict[str, Any]) -> None:
    await set_aside(ctx.host(d["host"]), d["container"], d["kept"], d["policy"])
