"""`proxy-config` as a flow: write the nginx server block under the environment's lock,
check it with `nginx -t`, and put the previous file back (the write's undo) when nginx
refuses it. What to write is planned by checks.proxy, which reads and changes nothing."""

from __future__ import annotations

from ..checks import commands as cc
from ..checks.context import HostContext
from ..checks.proxy import NGINX_DIRS, ProxyResult, parse_place, pick_routes, published_ports
from ..checks.proxy import render as render_block
from ..config import Config
from ..events import EventBus
from ..hosts import HostPool
from ..state import state_dir
from ..steps import Outcome, Step, run_steps
from ..transport import CommandFailed, Host
from ..transport.base import short_command
from . import lock


def target_path(project: str, domain: str, nginx: str | None, dirs: list[str],
                path: str | None = None) -> str:
    """nginx's first conf folder when nginx is there, else ferryman's own folder."""
    if path is not None:
        return path
    folder = dirs[0] if nginx and dirs else f"{state_dir(project)}/nginx"
    return f"{folder}/{domain}.conf"


def write_steps(host: Host, label: str, result: ProxyResult, path: str,
                backup: str) -> list[Step]:
    install, restore = cc.install_file(path, backup), cc.restore_file(path, backup)

    async def write() -> str:
        res = await host.run(install, input=result.config.encode(), timeout=30, check=True)
        result.path = path
        result.backup = backup if f"backup {backup}" in res.stdout else None
        kept = f"; previous file kept as {result.backup}" if result.backup else ""
        return f"wrote {path}{kept}"

    async def put_back() -> None:
        await host.run(restore, timeout=30, check=True)
        result.restored = True

    steps = [Step(f"write nginx config for {result.domain} on {label}", write, put_back,
                  params={"path": path, "backup": backup}, host=label, undo_if_failed=True,
                  commands=[short_command(install)])]
    if result.nginx is None:
        return steps
    test = cc.nginx_test()

    async def check() -> str:
        res = await host.run(test, timeout=30)
        result.nginx_output = (res.stderr + res.stdout).strip()
        result.validated = res.ok
        if not res.ok:
            raise CommandFailed(res, f"nginx -t on {label} refused the new config")
        return "nginx -t: ok"

    steps.append(Step(f"check nginx config on {label}", check, host=label,
                      commands=[short_command(test)]))
    return steps


async def proxy_config(cfg: Config, pool: HostPool, env: str, label: str, domain: str,
                       bus: EventBus, *, stamp: str, path: str | None = None,
                       root: str | None = None, api: str | None = None,
                       write: bool = True) -> tuple[ProxyResult, Outcome | None]:
    """Plans the block; with write, runs the steps. Outcome None: nothing was to run."""
    await pool.resolve(env)
    ctx = HostContext(cfg, pool, env, label, stamp=stamp)
    # A blue-green service is reached through its upstream, whichever side is live.
    upstreams = {n: s.upstream for n, s in cfg.services.items() if s.proxy is not None}
    routes = pick_routes(await published_ports(ctx), root, api, upstreams)
    result = ProxyResult(env, label, domain, routes, render_block(domain, routes))
    place = parse_place((await ctx.run(cc.nginx_place(NGINX_DIRS))).stdout)
    result.nginx = place.nginx
    if not write:
        return result, None
    path = target_path(cfg.project, domain, place.nginx, place.dirs, path)
    steps = write_steps(ctx.host, label, result, path, f"{path}.ferryman-{stamp}.bak")
    # Under the environment's lock, taken and given back by the step runner.
    held = lock.env_lock(cfg, pool, env, f"proxy-config {env} --domain {domain}")
    outcome = await run_steps(bus, steps, {"env": env, "host": label, "domain": domain},
                              locks=[held])
    return result, outcome
