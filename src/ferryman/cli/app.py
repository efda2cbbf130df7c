"""The ferryman command: global options and the command table."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import __version__
from . import (
    check,
    config_cmd,
    data,
    demo,
    doctor,
    init_cmd,
    logs,
    release,
    restart,
    status,
    web,
)
from .common import Options

app = typer.Typer(
    name="ferryman",
    help="Carry Docker releases and data between environments over SSH.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ferryman {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        Path("ferryman.yml"), "--config", "-c", envvar="FERRYMAN_CONFIG",
        help="Path of ferryman.yml.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every command run."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version."),
) -> None:
    ctx.obj = Options(config, verbose)


app.add_typer(config_cmd.app, name="config")
app.add_typer(demo.app, name="demo")
app.add_typer(web.app, name="web")
app.command("init")(init_cmd.init)
app.command()(status.status)
app.command()(check.check)
app.command()(logs.logs)
app.command()(restart.restart)
app.command()(release.release)
app.command()(release.rollback)
app.command()(release.history)
app.command()(release.unlock)
app.command()(release.resume)
app.command()(release.abort)
app.command()(data.backup)
app.command()(data.backups)
app.command()(data.restore)
app.command("sync-data")(data.sync_data)
app.command()(doctor.doctor)
app.command("proxy-config")(doctor.proxy_config)


def main() -> None:
    app()
