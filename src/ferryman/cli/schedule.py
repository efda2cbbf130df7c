"""`ferryman schedule run | status | install --print`: backups that run themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from ..errors import EXIT_BAD_INPUT
from ..flows import schedule as flow
from ..hosts import open_pool
from ..schedule.install import units
from .common import (
    err_console,
    execute,
    exit_with,
    fail,
    load,
    make_bus,
    options,
    out_console,
    print_json,
    run_logged,
)

app = typer.Typer(help="Backups that run themselves: the `schedules:` of ferryman.yml.",
                  no_args_is_help=True)


@app.command("run")
def run(
    ctx: typer.Context,
    env: list[str] = typer.Option(None, "--env", "-e", help="Only these environments."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what is due and the steps."),
    json_out: bool = typer.Option(False, "--json", help="Print each job's result as JSON."),
) -> None:
    """One pass: run every job that is due (missed runs are reported and run once)."""
    cfg = load(ctx)
    if not cfg.schedules:
        raise fail(f"{cfg.source}: no schedules: nothing to run", EXIT_BAD_INPUT,
                   "add schedules: {ENV: {backup: '30 2 * * *'}} to ferryman.yml")
    bus, logs = make_bus(ctx, cfg, "schedule")
    done: list[flow.JobRun] = []

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            done.extend(await flow.run_pass(cfg, pool, bus, envs=env or None,
                                            dry_run=dry_run))
        return max((j.exit_code for j in done), default=0)

    code = run_logged(go, logs)
    if json_out:
        print_json([j.to_dict() for j in done])
    else:
        for j in done:
            missed = f" (missed {len(j.due.missed)})" if j.due.missed else ""
            out_console.print(f"{j.due.env} {j.due.job}: {j.result}{missed}"
                              + (f" {j.id}" if j.id else "")
                              + (f": {j.said}" if j.result in ("failed", "skipped") else ""),
                              highlight=False, markup=False)
    exit_with(code)


@app.command("status")
def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each scheduled job: its time, whether it is due, and its last runs."""
    cfg = load(ctx)

    async def go() -> list[dict[str, object]]:
        async with open_pool(cfg) as pool:
            rows = []
            for d in await flow.due_jobs(cfg, pool):
                s = await flow.located_site(cfg, pool, d.env)
                runs = [r for r in await flow.read_runs(s) if r.env == d.env and r.job == d.job]
                last = runs[-1] if runs else None
                rows.append({"env": d.env, "job": d.job, "cron": d.when, "due": d.run,
                             "missed": len(d.missed),
                             "last": vars(last) if last else None})
            return rows

    rows = execute(go)
    if json_out:
        print_json(rows)
        return
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("env", "job", "cron (UTC)", "due now", "last run", "result", "backup"):
        table.add_column(col, overflow="fold")
    for r in rows:
        last = r["last"] or {}
        assert isinstance(last, dict)
        table.add_row(str(r["env"]), str(r["job"]), str(r["cron"]),
                      "yes" + (f" (missed {r['missed']})" if r["missed"] else "") if r["due"]
                      else "no", str(last.get("started", "never")), str(last.get("result", "")),
                      str(last.get("id", "")))
    out_console.print(table)


@app.command("install")
def install(
    ctx: typer.Context,
    print_: bool = typer.Option(False, "--print", help="Print the crontab line and the "
                                "systemd service and timer that run a pass every minute."),
) -> None:
    """How to run the schedules unattended on this machine (printed; nothing is installed)."""
    cfg = load(ctx)
    if not print_:
        raise fail("ferryman installs nothing on this machine: use --print and install the "
                   "crontab line or the systemd units yourself", EXIT_BAD_INPUT)
    config = str(Path(options(ctx).config).resolve())
    u = units(sys.executable, config, str(Path(config).parent))
    out_console.print("# crontab -e  (one pass a minute):", highlight=False, markup=False)
    out_console.print(u.crontab, highlight=False, markup=False, soft_wrap=True)
    out_console.print("# or systemd: /etc/systemd/system/ferryman-schedule.service",
                      highlight=False, markup=False, soft_wrap=True)
    out_console.print(u.service, highlight=False, markup=False, soft_wrap=True)
    out_console.print("# /etc/systemd/system/ferryman-schedule.timer, then: systemctl "
                      "enable --now ferryman-schedule.timer", highlight=False, markup=False,
                      soft_wrap=True)
    out_console.print(u.timer, highlight=False, markup=False, soft_wrap=True)
    if not cfg.schedules:
        err_console.print("note: ferryman.yml has no schedules yet: each pass will do nothing",
                          highlight=False)
