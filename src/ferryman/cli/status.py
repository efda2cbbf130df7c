"""`ferryman status`: what runs where, and which services drift between environments."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from ..config import Config
from ..docker.inspect import short_id
from ..flows import status as flow
from ..hosts import open_pool
from .common import execute, load, out_console, print_json


def _envs(cfg: Config, envs: list[str]) -> list[str]:
    return envs or list(cfg.environments)


def _state(s: flow.ServiceStatus) -> str:
    colour = {"running": "green", "absent": "yellow", "unreachable": "red"}.get(s.state, "red")
    text = f"[{colour}]{s.state}[/]"
    f = s.facts
    if f is None:
        return text
    if f.health:
        hc = {"healthy": "green", "starting": "yellow"}.get(f.health, "red")
        text += f", [{hc}]{f.health}[/]"
    if not f.running and f.status == "exited":
        text += f" ({f.exit_code})"
    if f.restarts:
        text += f"\n[yellow]{f.restarts} restarts[/]"
    return text


def _mode(s: flow.ServiceStatus) -> str:
    f = s.facts
    if s.error:
        return f"[red]{escape(s.error)}[/]"
    if f is None or f.compose is None:
        return s.mode
    files = "\n".join(
        f"{p}{'' if s.compose_files.get(p) else ' [red](missing)[/]'}"
        for p in f.compose.config_files
    ) or "[red]no config_files label[/]"
    if s.files_disagree:
        files += (f"\n[yellow]the files name {escape(s.files_name or '')}: a plain compose up "
                  "would start it[/]")
    return f"compose {f.compose.project}/{f.compose.service}\n{files}"


def ago(iso: str, now: datetime | None = None) -> str:
    """'5m ago' from Docker's RFC 3339 timestamps (nanoseconds, Z)."""
    try:
        when = datetime.fromisoformat(iso[:26].rstrip("Z") + "+00:00" if "." in iso[:26]
                                      else iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    secs = int(((now or datetime.now(UTC)) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{max(secs, 0)}s ago"


def render(statuses: list[flow.ServiceStatus], envs: list[str]) -> None:
    for env in envs:
        table = Table(title=f"{env}", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("host", "service", "state", "image", "started", "how started"):
            table.add_column(col, overflow="fold", no_wrap=col in ("host", "service"))
        for s in (x for x in statuses if x.place.env == env):
            f = s.facts
            table.add_row(
                s.place.host, s.place.service, _state(s),
                f"{f.image_ref}\n[dim]{short_id(f.image_id)}[/]" if f else "-",
                ago(f.started_at) if f and f.running else "-",
                _mode(s),
            )
        out_console.print(table)
    if len(envs) < 2:
        return
    table = Table(title="drift", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("service")
    for env in envs:
        table.add_column(env)
    table.add_column("")
    for d in flow.drift(statuses, envs):
        cells = ["\n".join(d.images[e]) or "-" for e in envs]
        table.add_row(d.service, *cells, "[bold yellow]DIFFERS[/]" if d.differs else "same")
    out_console.print(table)


def status(
    ctx: typer.Context,
    envs: list[str] = typer.Argument(None, help="Environments to show (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per environment, host and service: state, health, image, how it was started; drift."""
    cfg = load(ctx)
    names = _envs(cfg, envs or [])

    async def go() -> list[flow.ServiceStatus]:
        async with open_pool(cfg) as pool:
            for env in names:
                pool.env(env)
            return await flow.collect(pool, names)

    statuses = execute(go)
    from . import swarm_status
    swarms = swarm_status.read(cfg, names)
    if json_out:
        print_json({
            **({"swarm": [v.to_dict() for v in swarms]} if swarms else {}),
            "services": [s.to_dict() for s in statuses],
            "drift": [{"service": d.service, "differs": d.differs, "images": d.images}
                      for d in flow.drift(statuses, names)] if len(names) > 1 else [],
        })
    else:
        render(statuses, names)
        swarm_status.render(swarms)
    if any(s.error for s in statuses) or any(v.error for v in swarms):
        raise typer.Exit(3)
