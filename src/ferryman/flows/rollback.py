"""`ferryman rollback ENV`: back to what ran before a release, through the same health gate.

Run mode puts the container the release set aside back under its name; compose mode pins the
previous image again; a bootstrapped service is stopped and set aside (there was nothing
before it).
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..docker.compose import file_version
from ..docker.inspect import ContainerFacts, parse_containers
from ..errors import BadInput, PreconditionFailed
from ..hosts import HostPool
from ..state import release_id
from . import recreate as rc
from .check import compose_flavour
from .history import read_history
from .release import Plan, lock_step


def pick(records: list[dict[str, Any]], env: str, wanted: str | None) -> dict[str, Any]:
    """The release to undo: the one named, else the newest successful one not yet undone."""
    done = {r.get("rolls_back") for r in records if r.get("kind") == "rollback"
            and r.get("result") == "ok"}
    releases = [r for r in records if r.get("kind") == "release" and r.get("to") == env
                and r.get("result") == "ok"]
    if wanted:
        match = [r for r in releases if r.get("id") == wanted]
        if not match:
            known = ", ".join(r["id"] for r in releases[-5:]) or "none"
            raise BadInput(f"no successful release {wanted} on {env} (latest: {known})",
                           hint=f"ferryman history {env}")
        return match[-1]
    for record in reversed(releases):
        if record.get("id") not in done:
            return record
    raise BadInput(f"no release on {env} to roll back", hint=f"ferryman history {env}")


async def plan_rollback(cfg: Config, pool: HostPool, env: str, wanted: str | None) -> Plan:
    records = await read_history(cfg, pool, env)
    target = pick(records, env, wanted)
    plan = Plan(release_id(), env, env, {}, kind="rollback",
                record_extra={"rolls_back": target["id"]})
    plan.lock_host = pool.env(env).hosts[0].label
    entries = [e for e in target.get("services", []) if e.get("mode") != "unchanged"]
    seen: dict[str, dict[str, ContainerFacts]] = {}
    for e in entries:
        host = pool.host(env, e["host"])
        if e["host"] not in seen:
            names = [x["container"] for x in entries if x["host"] == e["host"]]
            names += [x["kept"] for x in entries if x["host"] == e["host"] and x.get("kept")]
            res = await host.run(["docker", "inspect", "--type", "container", *names],
                                 timeout=60)
            seen[e["host"]] = parse_containers(res.stdout)
    lock_seen = {h: {n: f for n, f in facts.items() if ".ferryman-" not in n}
                 for h, facts in seen.items()}
    plan.steps.append(lock_step(cfg, pool, env, plan, lock_seen))
    for e in entries:
        svc = e["service"]
        if svc not in cfg.services:
            raise BadInput(f"release {target['id']} names service {svc}, which ferryman.yml "
                           "no longer has")
        facts = seen[e["host"]].get(e["container"])
        t = rc.Target(svc, e["host"], pool.host(env, e["host"]), e["container"],
                      cfg.services[svc].health, facts, env=env)
        current = ({"ref": facts.image_ref, "id": facts.image_id} if facts else None)
        entry: dict[str, Any] = {"service": svc, "host": e["host"], "container": e["container"],
                                 "mode": e["mode"], "old": current, "new": e.get("old")}
        plan.services.append(entry)
        if e["mode"] == "run":
            kept = e.get("kept", "")
            if kept not in seen[e["host"]]:
                raise PreconditionFailed(
                    f"the previous {svc} container ({kept}) is gone from {e['host']}",
                    hint="it was pruned or removed; release the older version again instead")
            policy = e.get("restart_policy") or "no"
            steps = []
            if facts is not None:
                steps.append(rc.retire_steps(t, rc.kept_name(t.container, plan.rid)))
                entry["kept"] = rc.kept_name(t.container, plan.rid)
            steps += [rc.revive_step(t, kept, policy), rc.health_step(t)]
            plan.steps.extend(steps)
        elif e["mode"] == "compose":
            if facts is None or facts.compose is None:
                raise PreconditionFailed(f"{svc} on {e['host']} no longer runs under compose")
            old = e["old"]
            previous = await rc.resolve_previous(t.host, old["ref"], old["id"])
            flavour = await compose_flavour(t.host)
            head = await t.host.run(["cat", facts.compose.config_files[0]], timeout=30)
            if flavour is None or not head.ok:
                raise PreconditionFailed(f"cannot run compose for {svc} on {e['host']}: "
                                         + ("no docker compose" if flavour is None
                                            else head.stderr.strip()))
            plan.steps += [rc.compose_step(t, cfg.project, previous, file_version(head.stdout),
                                           flavour == "v2"), rc.health_step(t)]
        elif e["mode"] == "bootstrap" and facts is not None:
            kept = rc.kept_name(t.container, plan.rid)
            entry["kept"] = kept
            plan.steps.append(rc.retire_steps(t, kept, gate_on_undo=True))
    return plan
