"""`ferryman check`: SSH, Docker, compose and disk on each host."""

from __future__ import annotations

import typer
from rich.table import Table

from ..flows import check as flow
from ..hosts import open_pool
from .common import execute, human_bytes, load, out_console, print_json


def check(
    ctx: typer.Context,
    envs: list[str] = typer.Argument(None, help="Environments to check (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Can ferryman work on each host? SSH, Docker daemon, compose, free disk."""
    cfg = load(ctx)
    names = envs or list(cfg.environments)

    async def go() -> list[flow.HostCheck]:
        async with open_pool(cfg) as pool:
            for env in names:
                pool.env(env)
            return await flow.check(pool, names)

    results = execute(go)
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        table = Table()
        for col in ("env", "host", "ssh", "docker", "compose", "docker root", "free disk"):
            table.add_column(col)
        for r in results:
            ssh = f"[green]ok[/] {r.connect_seconds:.2f}s" if r.ssh_ok else f"[red]{r.error}[/]"
            docker = r.docker_version or (f"[red]{r.docker_error}[/]" if r.docker_error else "-")
            free = "-"
            if r.disk_free is not None and r.disk_total:
                free = f"{human_bytes(r.disk_free)} of {human_bytes(r.disk_total)}"
            table.add_row(r.env, r.host, ssh, docker, r.compose or "[yellow]none[/]",
                          r.docker_root or "-", free)
        out_console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(3)
