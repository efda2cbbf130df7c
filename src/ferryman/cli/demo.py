"""`ferryman demo`: two local test hosts running a small app, to try ferryman on."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import load_config
from ..errors import EXIT_PRECONDITION
from ..flows import release as release_flow
from ..flows import status as status_flow
from ..hosts import open_pool
from ..lab import demo as lab_demo
from ..lab.images import LabError
from .common import err_console, execute, fail, make_bus, run_logged
from .status import render
from .web import DEFAULT_BIND, serve

app = typer.Typer(help="The built-in demo on local test hosts.", invoke_without_command=True)

WORKDIR = Path(".ferryman/demo")


def _show_status(config: Path) -> None:
    cfg = load_config(config)

    async def go() -> list[status_flow.ServiceStatus]:
        async with open_pool(cfg) as pool:
            return await status_flow.collect(pool, ["test", "prod"])

    render(execute(go), ["test", "prod"])


def _release(ctx: typer.Context, config: Path) -> int:
    cfg = load_config(config)
    bus, logs = make_bus(ctx, cfg, "release")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            plan = await release_flow.plan_release(cfg, pool, "test", "prod", [], bus)
            return (await release_flow.execute(cfg, pool, plan, bus)).exit_code

    return run_logged(go, logs)


@app.callback()
def demo(
    ctx: typer.Context,
    workdir: Path = typer.Option(WORKDIR, "--workdir", help="Where the demo keeps its files."),
    no_release: bool = typer.Option(False, "--no-release", help="Only start the hosts."),
    web: bool = typer.Option(False, "--web", help="Start the hosts and serve the dashboard on "
                             "them, to release from the browser."),
    bind: str = typer.Option(DEFAULT_BIND, "--bind", help="With --web: HOST:PORT."),
) -> None:
    """Start TEST and PROD on the local Docker engine (v2 on TEST, v1 on PROD) and release
    TEST to PROD, showing status before and after; with --web, serve the dashboard instead."""
    if ctx.invoked_subcommand is not None:
        return
    err_console.print("starting two test hosts (the first run builds their image: ~2 min)")
    try:
        made = lab_demo.up(workdir.resolve())
    except LabError as exc:
        raise fail(str(exc), EXIT_PRECONDITION,
                   "the demo needs a local Docker engine, debootstrap and busybox-static: "
                   "scripts/engine installs them on Debian") from None
    err_console.print(f"demo config: {made.config}", highlight=False)
    if web:
        serve(made.config, bind, ready="open the ")
        return
    if no_release:
        _show_status(made.config)
        return
    err_console.rule("before: v2 on TEST, v1 on PROD, PROD's base_url names TEST")
    _show_status(made.config)
    err_console.rule("ferryman release test prod")
    code = _release(ctx, made.config)
    err_console.rule("after")
    _show_status(made.config)
    err_console.print(
        f"next: ferryman -c {made.config} history prod | rollback prod | status | check\n"
        "remove it all: ferryman demo down", highlight=False)
    if code:
        raise typer.Exit(code)


@app.command("down")
def down(
    workdir: Path = typer.Option(WORKDIR, "--workdir", help="Where the demo keeps its files."),
) -> None:
    """Remove the demo's hosts and files."""
    removed = lab_demo.down(workdir.resolve())
    err_console.print(f"removed {removed} demo host(s) and {workdir}", highlight=False)
