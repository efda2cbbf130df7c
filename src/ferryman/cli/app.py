"""The ferryman command: global options and the command table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from .. import __version__
from .common import Options

# name -> (module of ferryman.cli, attribute, a group of commands?), in the order of help.
# A run imports only the module of the command it runs: a no-op release does not pay for
# loading doctor, the dashboard and init.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "config": ("config_cmd", "app", True),
    "demo": ("demo", "app", True),
    "web": ("web", "app", True),
    "init": ("init_cmd", "init", False),
    "status": ("status", "status", False),
    "check": ("check", "check", False),
    "logs": ("logs", "logs", False),
    "restart": ("restart", "restart", False),
    "release": ("release", "release", False),
    "rollback": ("release", "rollback", False),
    "history": ("release", "history", False),
    "unlock": ("release", "unlock", False),
    "resume": ("release", "resume", False),
    "abort": ("release", "abort", False),
    "backup": ("data", "backup", False),
    "backups": ("data", "backups", False),
    "restore": ("data", "restore", False),
    "sync-data": ("data", "sync_data", False),
    "schedule": ("schedule", "app", True),
    "doctor": ("doctor", "doctor", False),
    "proxy-config": ("doctor", "proxy_config", False),
    "proxy-upstream": ("proxy", "proxy_upstream", False),
    "canary": ("proxy", "canary", False),
}
# Global options that take a value: the word after them is not the command.
_VALUED = {"-c", "--config"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ferryman {__version__}")
        raise typer.Exit()


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


def build(only: str | None = None) -> typer.Typer:
    """The command table; `only`: that command alone (the others are not imported)."""
    app = typer.Typer(
        name="ferryman",
        help="Carry Docker releases and data between environments over SSH.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main_options)
    for name, (module, attr, group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def command_in(args: list[str]) -> str | None:
    """The command an argv runs, when it names a known one after the global options."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole table, for whoever imports it (tests, docs)
        return build()
    raise AttributeError(name)


def main() -> None:
    args = sys.argv[1:]
    only = command_in(args)
    if only is None and "--version" in args:
        only = ""  # the version alone needs no command
    build(only)()
