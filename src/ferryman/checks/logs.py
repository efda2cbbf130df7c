"""logs: container logs that nothing rotates (source note 002: json-file with max-size and
max-file, e.g. 10m and 3). A json-file log without max-size grows until the disk is full.

Per container: its driver and options as `docker inspect` shows them (the daemon's defaults
were merged in when it was created) and the size of its log files now. Per host: the daemon's
default in /etc/docker/daemon.json (and dockerd's own flags). The safe fix merges the default
into daemon.json with a backup; restarting dockerd is left to the operator, since a restart
stops every container of the host unless `live-restore` is on, and the new default only
reaches containers created afterwards (a release recreates them).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from ..docker.inspect import ContainerFacts
from ..docker.runspec import log_flags
from ..state import ABSENT, read_file
from ..transport import CommandFailed
from ..units import human_bytes
from . import commands as cc
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "logs"
ROTATION = {"max-size": "10m", "max-file": "3"}
FILE_DRIVERS = ("json-file", "local")
# The local driver rotates by itself: 20 MB files, 5 of them (Docker's documentation).
LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}
SUGGESTED = "--log-opt max-size=10m --log-opt max-file=3"
QUIET_STOPPED = 10 << 20  # a stopped container's log this small is not worth a line
COMPOSE_LOGGING = 'logging: {driver: json-file, options: {max-size: "10m", max-file: "3"}}'


@dataclass
class DaemonFacts:
    now: int | None = None
    mtime: int | None = None  # of daemon.json
    elapsed: int | None = None  # seconds dockerd has run
    args: list[str] = field(default_factory=list)

    @property
    def started_before_change(self) -> bool:
        if None in (self.now, self.mtime, self.elapsed):
            return False
        assert self.now is not None and self.mtime is not None and self.elapsed is not None
        return self.now - self.elapsed < self.mtime


def parse_dockerd_facts(stdout: str) -> DaemonFacts:
    facts = DaemonFacts()
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("now", "mtime", "dockerd_elapsed") and value.strip().isdigit():
            setattr(facts, {"dockerd_elapsed": "elapsed"}.get(key, key), int(value))
        elif key == "dockerd_args":
            facts.args = value.split()
    return facts


def flag_defaults(args: list[str]) -> tuple[str | None, dict[str, str]]:
    """The log driver and options dockerd was started with on its command line."""
    driver, opts = None, {}
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
        if name == "--log-driver":
            driver = value
        elif name == "--log-opt" and "=" in value:
            k, _, v = value.partition("=")
            opts[k] = v
    return driver, opts


def parse_daemon_json(text: str) -> dict[str, Any]:
    """daemon.json as a dict ({} for an empty file); ValueError when it is not an object."""
    if not text.strip():
        return {}
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def daemon_default(doc: dict[str, Any], args: list[str], info_driver: str
                   ) -> tuple[str, dict[str, str]]:
    """The driver and options new containers get: dockerd's flags, else daemon.json."""
    flag_driver, flag_opts = flag_defaults(args)
    driver = flag_driver or doc.get("log-driver") or info_driver or "json-file"
    opts = {str(k): str(v) for k, v in (doc.get("log-opts") or {}).items()}
    return driver, {**opts, **flag_opts}


def rotated(driver: str, opts: dict[str, str]) -> bool | None:
    """True when the files are bounded, False when they grow forever, None when the driver
    writes no file on the host (journald, syslog, fluentd, none...)."""
    if driver == "json-file":
        return opts.get("max-size", "-1") not in ("-1", "", "0")
    if driver == "local":
        return opts.get("max-size", "20m") not in ("-1", "", "0")
    return None


def merged(doc: dict[str, Any]) -> dict[str, Any]:
    """daemon.json with log rotation added; everything it had is kept, a value the operator
    set is never replaced."""
    out = dict(doc)
    out.setdefault("log-driver", "json-file")
    opts = dict(out.get("log-opts") or {})
    for k, v in ROTATION.items():
        opts.setdefault(k, v)
    out["log-opts"] = opts
    return out


def parse_sizes(stdout: str, paths: list[str]) -> dict[str, int]:
    """log path -> bytes of it and its rotated siblings, from `stat -c '%s %n'`."""
    sizes = dict.fromkeys(paths, 0)
    for line in stdout.splitlines():
        size, _, name = line.partition(" ")
        if not size.isdigit():
            continue
        owner = max((p for p in paths if name == p or name.startswith(p + ".")),
                    key=len, default=None)
        if owner is not None:
            sizes[owner] += int(size)
    return sizes


def describe(driver: str, opts: dict[str, str]) -> str:
    shown = " ".join(f"{k}={v}" for k, v in sorted(opts.items()))
    return f"{driver}" + (f" ({shown})" if shown else " without options")


def _container_fix(f: ContainerFacts, log: dict[str, Any]) -> Fix:
    carried = log_flags(log)
    now = (f"a release carries `{shlex.join(carried)}` as it is now" if carried else
           "a release carries no log flag today (json-file without options is the daemon's "
           "default), so it gets the daemon default once that is set and dockerd restarted")
    if f.compose is not None:
        return Fix(f"in {', '.join(f.compose.config_files) or 'the compose file'}, service "
                   f"{f.compose.service}: `{COMPOSE_LOGGING}`, then `compose up -d`; or set the "
                   "daemon default (see `daemon default`)")
    return Fix(f"recreate it with `--log-driver json-file {SUGGESTED}` (`docker update` cannot "
               f"change logging); {now}")


def _daemon_fix(ctx: HostContext, doc: dict[str, Any], existed: bool) -> Fix:
    path = cc.DAEMON_JSON
    backup = f"{path}.ferryman-doctor-{ctx.stamp}.bak"
    new = merged(doc)
    text = json.dumps(new, indent=2) + "\n"
    restart = ("dockerd must restart for it to apply (`systemctl restart docker`; without "
               "\"live-restore\": true every container stops and starts again), and only "
               "containers created afterwards get it: the next release recreates them")

    async def apply() -> str:
        put = await ctx.host.run(cc.install_file(path, backup), input=text.encode(),
                                 timeout=30)
        if not put.ok:
            raise CommandFailed(put, f"could not write {path}")
        checked = await ctx.run(cc.dockerd_validate(path))
        if not checked.ok:
            await ctx.run(cc.restore_file(path, backup))
            raise CommandFailed(checked, f"dockerd refuses the new {path}; the previous "
                                "file is back")
        kept = f", previous file kept as {backup}" if existed else ""
        return (f"log-opts {json.dumps(new['log-opts'])} merged into {path}{kept}; "
                f"{checked.stdout.strip() or 'dockerd accepts it'}; {restart}")

    return Fix(f"merge \"log-opts\": {json.dumps(ROTATION)} into {path} (kept beside it as "
               f"{backup}); then {restart}", safe=True, apply=apply,
               commands=[f"cp -p {path} {backup}", f"cat > {path}  # {json.dumps(new)}",
                         shlex.join(cc.dockerd_validate(path)[:2]) + " ..."])


async def _daemon(ctx: HostContext) -> Finding:
    info_res, info = await ctx.docker_info()
    res = await ctx.run(read_file(cc.DAEMON_JSON))
    facts_res = await ctx.run(cc.dockerd_facts())
    facts = parse_dockerd_facts(facts_res.stdout)
    existed = res.exit_status != ABSENT
    ev = [ctx.evidence(res) if existed else ctx.evidence(res, f"{cc.DAEMON_JSON}: absent"),
          ctx.evidence(facts_res)]
    if existed and not res.ok:
        return warn(NAME, "daemon default", f"cannot read {cc.DAEMON_JSON}", evidence=ev)
    try:
        doc = parse_daemon_json(res.stdout if existed else "")
    except ValueError as exc:
        return fail(NAME, "daemon default", f"{cc.DAEMON_JSON} is not valid JSON ({exc}): "
                    "dockerd will not start with it", evidence=ev,
                    fix=Fix(f"mend {cc.DAEMON_JSON} (`python3 -m json.tool` shows where)"))
    driver, opts = daemon_default(doc, facts.args, info.get("LoggingDriver", ""))
    data = {"driver": driver, "opts": opts, "daemon_json": existed,
            "flags": flag_defaults(facts.args)[1]}
    bounded = rotated(driver, opts)
    if bounded is None:
        return ok(NAME, "daemon default", f"new containers log to {driver}: no file on the "
                  "host to rotate", evidence=ev[:1], data=data)
    if not bounded:
        where = "absent" if not existed else "without log-opts max-size"
        return warn(NAME, "daemon default", f"new containers get {describe(driver, opts)}: "
                    f"their logs grow without bound ({cc.DAEMON_JSON} {where})",
                    evidence=[*ev, ctx.evidence(info_res, f"LoggingDriver: "
                                                          f"{info.get('LoggingDriver')}")],
                    fix=_daemon_fix(ctx, doc, existed), data=data)
    if facts.started_before_change and rotated(*daemon_default({}, facts.args, "")) is False:
        return warn(NAME, "daemon default", f"{cc.DAEMON_JSON} sets {describe(driver, opts)}, "
                    f"but dockerd has run for {facts.elapsed}s, since before the file changed: "
                    "not in force until dockerd restarts", evidence=ev, data=data,
                    fix=Fix("restart dockerd when a pause suits (`systemctl restart docker`; "
                            "set \"live-restore\": true first to keep containers running), "
                            "then release or recreate the containers to give them the default"))
    return ok(NAME, "daemon default", f"new containers get {describe(driver, opts)}",
              evidence=ev[:1], data=data)


def _log_config(f: ContainerFacts) -> dict[str, Any]:
    return (f.raw.get("HostConfig") or {}).get("LogConfig") or {}


async def _containers(ctx: HostContext) -> list[Finding]:
    res, facts = await ctx.all_containers()
    if res is None:
        return []
    paths = {n: f.raw.get("LogPath") or "" for n, f in facts.items()}
    wanted = [p for p in paths.values() if p]
    sizes_res = await ctx.run(cc.log_sizes(wanted)) if wanted else None
    sizes = parse_sizes(sizes_res.stdout, wanted) if sizes_res else {}
    services = {p.container: p.service for p in ctx.placements}
    out = []
    for name, f in sorted(facts.items()):
        log = _log_config(f)
        driver = log.get("Type") or ""
        opts = {k: str(v) for k, v in (log.get("Config") or {}).items()}
        path = paths.get(name, "")
        size = sizes.get(path) if path else None
        data = {"container": name, "service": services.get(name), "driver": driver,
                "opts": opts, "log_path": path, "bytes": size}
        now = f": {human_bytes(size)} now" if size is not None else ""
        bounded = rotated(driver, opts)
        if bounded is False and name not in services and not f.running \
                and (size or 0) < QUIET_STOPPED:
            continue  # stopped, and its log is small: it grows no more
        if bounded is False:
            ev = [ctx.evidence(res, f"{name}: HostConfig.LogConfig {json.dumps(log)}\n"
                                    f"LogPath {path}")]
            if sizes_res is not None and path:
                # The same script for this container's files alone prints these lines.
                mine = "\n".join(ln for ln in sizes_res.stdout.splitlines()
                                 if ln.partition(" ")[2].startswith(path))
                ev.append(ctx.evidence(replace(sizes_res, argv=cc.log_sizes([path]),
                                               stdout=mine), mine or f"{path}: no file yet"))
            out.append(warn(NAME, name, f"{describe(driver, opts)}: nothing rotates its log"
                            f"{now}", evidence=ev, fix=_container_fix(f, log), data=data))
        elif name in services:
            extra = " (its own defaults: 20m x 5)" if driver == "local" and not opts else ""
            out.append(ok(NAME, name, f"{describe(driver, opts)}{extra}{now}", data=data))
    return out


async def run(ctx: HostContext) -> list[Finding]:
    return [await _daemon(ctx), *await _containers(ctx)]
