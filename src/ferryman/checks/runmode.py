"""run mode: how each service was started, and so what `release` will do with it.

Source notes 000/001: servers often run containers by plain `docker run`, or keep compose
labels that name files long gone; a release must know before it starts.
"""

from __future__ import annotations

from ..docker import commands as dc
from ..docker.composefile import full_ref, named_by_project, project_files
from ..docker.inspect import COMPOSE, ContainerFacts
from ..state import state_dir
from .context import HostContext
from .findings import Finding, Fix, ok, warn

NAME = "runmode"


def labels_text(facts: ContainerFacts) -> str:
    shown = [f"{k}={v}" for k, v in sorted(facts.labels.items()) if k.startswith(COMPOSE)]
    return "\n".join(shown) or "(no com.docker.compose.* labels)"


async def run(ctx: HostContext) -> list[Finding]:
    res, facts = await ctx.services()
    files = [f for x in facts.values() if x.compose for f in x.compose.config_files]
    exist_res, exist = await ctx.files_exist(files)
    flavour = await ctx.compose_flavour() if files else None
    out = []
    for p in ctx.placements:
        f = facts.get(p.container)
        if f is None or res is None:
            out.append(warn(NAME, p.service, f"no container {p.container} here: a release "
                            "will bootstrap it (create it from the source environment's "
                            "container, with its options carried over)",
                            evidence=[ctx.evidence(res)] if res else [],
                            data={"mode": "absent", "release": "bootstrap"}))
            continue
        ev = [ctx.evidence(res, f"{p.container}:\n{labels_text(f)}")]
        c = f.compose
        if c is None:
            out.append(ok(NAME, p.service, "run mode (`docker run`, no compose labels): a "
                          "release recreates it from docker inspect, keeping the options it "
                          "was started with", evidence=ev,
                          data={"mode": "run", "release": "run"}))
            continue
        if not c.complete:
            out.append(warn(NAME, p.service, f"compose labels of project {c.project} lack the "
                            "working dir or config files: a release recreates it from docker "
                            "inspect (run mode)", evidence=ev,
                            data={"mode": "compose-incomplete", "release": "run"}))
            continue
        missing = [x for x in c.config_files if not exist.get(x, False)]
        if exist_res is not None:
            ev.append(ctx.evidence(exist_res, "\n".join(
                f"{x} {'exists' if exist.get(x) else 'MISSING'}" for x in c.config_files)))
        data = {"project": c.project, "compose_service": c.service,
                "working_dir": c.working_dir, "files": c.config_files, "missing": missing}
        if missing:
            out.append(warn(
                NAME, p.service,
                f"started by compose (project {c.project}), but its labels name "
                f"{', '.join(missing)}, which is missing: a release cannot use compose and "
                "recreates it from docker inspect (run mode)", evidence=ev,
                fix=Fix(f"restore {', '.join(missing)} (from version control or a backup), "
                        "or leave it in run mode on purpose"),
                data={**data, "mode": "compose-files-missing", "release": "run"}))
        elif flavour is None:
            out.append(warn(NAME, p.service, f"started by compose (project {c.project}), but "
                            "neither `docker compose` nor `docker-compose` is installed: a "
                            "release recreates it from docker inspect (run mode)", evidence=ev,
                            fix=Fix("install docker compose (v2 plugin) or docker-compose"),
                            data={**data, "mode": "compose-no-binary", "release": "run"}))
        else:
            tool = "docker compose" if flavour == "v2" else "docker-compose"
            out.append(ok(NAME, p.service, f"compose mode: project {c.project}, service "
                          f"{c.service}, files present; a release pins the new image in an "
                          f"override file and runs `{tool} up -d --no-deps {c.service}`",
                          evidence=ev, data={**data, "mode": "compose", "release": "compose"}))
            out.extend(await _files_disagree(ctx, p.service, f, tool))
    return out


async def _files_disagree(ctx: HostContext, service: str, f: ContainerFacts,
                          tool: str) -> list[Finding]:
    """The project's own files (not ferryman's override) naming another image than the one
    that runs: a plain `compose up -d` (a reboot script) would silently start that one."""
    c = f.compose
    assert c is not None
    own, env_path = project_files(c, state_dir(ctx.cfg.project))
    res = await ctx.run(dc.read_files([*own, env_path]))
    texts = dc.parse_read_files(res.stdout)
    named = named_by_project(c, texts, state_dir(ctx.cfg.project))
    shown = [ctx.evidence(res, "\n".join(
        f"{path}:\n{texts[path]}" if texts.get(path) is not None else f"{path}: absent"
        for path in [*own, env_path]))]
    if named is None or full_ref(named[0]) == full_ref(f.image_ref):
        return []
    image, where = named
    return [warn(NAME, service, f"{where} names {image} for {c.service}, but {f.image_ref} "
                 f"runs: a plain `{tool} up -d` in {c.working_dir} would start {image} again",
                 evidence=shown,
                 fix=Fix(f"make {where} (or the project's .env) name {f.image_ref}; a "
                         "release with persist_compose (the default) does it"),
                 data={"files_name": image, "runs": f.image_ref, "file": where})]
