"""What every command shares: options, loading the config, the event bus, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from ..config import Config, ConfigError, load_config
from ..errors import (
    EXIT_BAD_INPUT,
    EXIT_FLOW_FAILED,
    BadInput,
    FerrymanError,
)
from ..events import EventBus
from ..logfiles import LogFiles
from ..redact import Redactor
from ..transport import CommandFailed
from ..units import human_bytes
from ..view import TerminalView

T = TypeVar("T")
__all__ = ["human_bytes"]  # the CLI modules take it from here
err_console = Console(stderr=True)
out_console = Console()


@dataclass
class Options:
    config: Path
    verbose: bool = False


def options(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    if isinstance(obj, Options):
        return obj
    return Options(Path(os.environ.get("FERRYMAN_CONFIG", "ferryman.yml")))


def load(ctx: typer.Context) -> Config:
    try:
        return load_config(options(ctx).config)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None


def log_dir(cfg: Config) -> Path:
    path = Path(cfg.log_dir).expanduser()
    if not path.is_absolute():
        path = Path(cfg.source).resolve().parent / path
    return path


def make_bus(ctx: typer.Context, cfg: Config, flow: str, *, files: bool = True,
             terminal: bool = True) -> tuple[EventBus, LogFiles | None]:
    bus = EventBus(flow, Redactor(cfg.secrets))
    if terminal:
        bus.add(TerminalView(err_console, verbose=options(ctx).verbose))
    logs = None
    if files:
        logs = LogFiles(log_dir(cfg), flow)
        bus.add(logs)
    return bus, logs


def fail(message: str, code: int, hint: str = "") -> typer.Exit:
    err_console.print(f"error: {message}", style="red", highlight=False, markup=False,
                      soft_wrap=True)
    if hint:
        err_console.print(f"hint: {hint}", style="yellow", highlight=False, markup=False,
                          soft_wrap=True)
    return typer.Exit(code)


def execute(fn: Callable[[], Awaitable[T]]) -> T:
    """Runs a command's coroutine and turns known errors into messages and exit codes."""
    try:
        return asyncio.run(fn())
    except FerrymanError as exc:
        raise fail(_message(exc), exc.exit_code, exc.hint) from None
    except KeyboardInterrupt:
        raise fail("interrupted", EXIT_FLOW_FAILED) from None


def _message(exc: FerrymanError) -> str:
    """The error, where it happened, and its last lines of raw output."""
    text = str(exc)
    if exc.step and exc.step not in text:
        text = f"{exc.step}: {text}"
    raw = exc.evidence
    if isinstance(exc, CommandFailed):
        raw = exc.result.stderr or exc.result.stdout
    detail = raw.strip().splitlines()[-3:] if raw else []
    return text + ("\n" + "\n".join(detail) if detail else "")


def run_logged(fn: Callable[[], Awaitable[T]], logs: LogFiles | None) -> T:
    """execute(), then close the run's log files and say where they are, whatever happened."""
    try:
        return execute(fn)
    finally:
        if logs is not None:
            logs.close()
            err_console.print(f"log: {logs.text_path}", style="dim", highlight=False)


def exit_with(code: int) -> None:
    if code:
        raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def confirm(cfg: Config, env: str, what: str, yes: bool) -> None:
    """Environments with `policy.confirm` ask before any change, unless --yes."""
    if not yes and cfg.environments[env].policy.confirm:
        ask(f"{env} asks for confirmation", what)


def ask(why: str, what: str) -> None:
    if not sys.stdin.isatty():
        raise BadInput(f"{why} and there is no terminal: pass --yes")
    if not typer.confirm(f"{what}: go ahead?", err=True):
        raise BadInput("not confirmed; nothing was changed")
