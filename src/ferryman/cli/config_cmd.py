"""`ferryman config check`: validate ferryman.yml and show it resolved, secrets masked."""

from __future__ import annotations

import io

import typer
from ruamel.yaml import YAML

from .common import err_console, load, options, print_json

app = typer.Typer(help="Validate and show ferryman.yml.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the resolved config as JSON."),
) -> None:
    """Validate ferryman.yml; print it resolved, with every secret masked."""
    cfg = load(ctx)
    shown = cfg.display()
    if json_out:
        print_json(shown)
        return
    yaml = YAML()
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(shown, buf)
    typer.echo(buf.getvalue().rstrip())
    err_console.print(f"{options(ctx).config}: valid ({len(cfg.environments)} environments, "
                      f"{len(cfg.services)} services)", style="green", highlight=False)
