"""`ferryman doctor`: what is wrong on each host, the evidence, the fix; `--fix` applies the
safe ones and checks again. `ferryman proxy-config`: the nginx server block for the app."""

from __future__ import annotations

import sys

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from ..checks import CHECKS, Finding, Report, Status, apply_fixes, examine
from ..checks.proxy import ProxyResult
from ..checks.runner import stamp_now
from ..errors import BadInput
from ..flows import proxy as proxy_flow
from ..hosts import open_pool
from ..steps import Outcome
from .common import (
    confirm,
    err_console,
    execute,
    load,
    make_bus,
    out_console,
    print_json,
    run_logged,
)

CHECK_HELP = "Run only this check (repeatable): " + ", ".join(CHECKS) + "."
COLOUR = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def _cell(f: Finding, details: bool) -> str:
    summary = f.summary
    if summary.startswith(f"{f.subject}: "):
        summary = summary[len(f.subject) + 2:]
    text = escape(summary)
    if f.subject not in ("-", ""):
        text = f"[bold]{escape(f.subject)}[/]: {text}"
    if not details or f.status == Status.OK:
        return text
    for ev in f.evidence:
        text += f"\n[dim]$ {escape(ev.command)}"
        if ev.exit not in (None, 0):
            text += f"  (exit {ev.exit})"
        if ev.output:
            text += "\n" + "\n".join(f"  {escape(line)}" for line in ev.output.splitlines())
        text += "[/]"
    if f.fix is not None:
        how = " [green](safe: --fix applies it)[/]" if f.fix.automatic else ""
        text += f"\n[cyan]fix:[/] {escape(f.fix.text)}{how}"
    return text


def host_table(env: str, host: str, findings: list[Finding], details: bool = True) -> Table:
    """One table per host, grouped by check; evidence and fix under each WARN and FAIL."""
    table = Table(title=f"{env} / {host}", title_justify="left", box=box.SIMPLE_HEAD,
                  show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("finding", overflow="fold")
    previous = None
    for f in findings:
        if previous is not None and f.check != previous:
            table.add_section()
        name = f.check if f.check != previous else ""
        table.add_row(name, f"[{COLOUR[f.status]}]{f.status}[/]", _cell(f, details))
        previous = f.check
    return table


def render(report: Report) -> None:
    for h in report.hosts:
        out_console.print(host_table(h.env, h.host, h.findings))
    if report.fixes:
        table = Table(title="fixes", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("host", "fix", "result", "checked again"):
            table.add_column(col, overflow="fold")
        for rec in report.fixes:
            f = rec.finding
            if rec.applied:
                result = f"[green]applied[/]: {escape(rec.result or '')}"
            else:
                result = f"[red]not applied[/]: {escape(rec.error or '')}"
            again = ", ".join(f"{c} [{COLOUR[Status(s)]}]{s}[/]" for c, s in rec.rechecked.items())
            proof = "[green]proven[/]" if rec.proven else "[red]not proven[/]"
            what = (f"{f.check} {f.status} ({f.subject}): {f.summary}\n"
                    f"fix: {f.fix.text if f.fix else ''}")
            table.add_row(f"{escape(f.env)}/{escape(f.host)}", escape(what), result,
                          f"{again}\n{proof}" if again else proof)
        out_console.print(table)
    counts = report.counts()
    line = ", ".join(f"[{COLOUR[Status(s)]}]{n} {s}[/]" for s, n in counts.items())
    out_console.print(line, highlight=False)
    pending = report.pending
    if pending:
        out_console.print(f"{len(pending)} safe fix(es) available: run again with --fix",
                          style="cyan", highlight=False)


def doctor(
    ctx: typer.Context,
    envs: list[str] = typer.Argument(None, help="Environments to examine (default: all)."),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes (with backups), then "
                             "check again."),
    json_out: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    domain: str | None = typer.Option(None, "--domain", help="The app's domain: the DNS layer "
                                      "of the reach check (resolved on the host) and the "
                                      "certificate served for it (certs)."),
    tls_port: int = typer.Option(443, "--tls-port", min=1, max=65535, help="Port where the "
                                 "hosts serve --domain over TLS (certs check)."),
    only: list[str] = typer.Option(None, "--check", help=CHECK_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before fixing."),
) -> None:
    """What is wrong on each host, with the evidence and the fix; --fix mends the safe ones."""
    cfg = load(ctx)
    names = envs or list(cfg.environments)
    unknown = [c for c in only or [] if c not in CHECKS]
    bus, logs = make_bus(ctx, cfg, "doctor", files=fix)
    stamp = stamp_now()

    async def go() -> Report:
        if unknown:
            raise BadInput(f"unknown check {', '.join(unknown)} (there are: "
                           f"{', '.join(CHECKS)})")
        async with open_pool(cfg, bus) as pool:
            for env in names:
                pool.env(env)
            report = await examine(cfg, pool, names, only or None, stamp=stamp, domain=domain,
                                   tls_port=tls_port)
            if fix and report.pending:
                for env in dict.fromkeys(f.env for f in report.pending):
                    todo = [f for f in report.pending if f.env == env]
                    confirm(cfg, env, f"apply {len(todo)} fix(es) on {env}: " + "; ".join(
                        f.fix.text for f in todo if f.fix), yes)
                report = await apply_fixes(cfg, pool, report, bus, stamp=stamp, domain=domain,
                                            tls_port=tls_port)
            return report

    try:
        report = execute(go)
    finally:
        if logs:
            logs.close()
    if json_out:
        print_json(report.to_dict())
    else:
        render(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def proxy_config(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    domain: str = typer.Option(..., "--domain", help="The server_name, e.g. shop.example.org."),
    host: str | None = typer.Option(None, "--host", help="Host of ENV (default: its first)."),
    path: str | None = typer.Option(None, "--path", help="Where to write it on the host "
                                    "(default: nginx's conf.d, or ferryman's folder when nginx "
                                    "is absent)."),
    root: str | None = typer.Option(None, "--root", help="Service behind / (default: by name)."),
    api: str | None = typer.Option(None, "--api", help="Service behind /api and /ws "
                                   "(default: by name)."),
    print_only: bool = typer.Option(False, "--print", help="Print it; write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write an nginx server block (/, /api, /ws) for the app's ports; check it with nginx -t."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "proxy-config", files=not print_only)

    async def go() -> tuple[ProxyResult, Outcome | None]:
        async with open_pool(cfg, bus) as pool:
            hosts = pool.env(env).hosts
            label = host or hosts[0].label
            if all(h.label != label for h in hosts):
                raise BadInput(f"environment '{env}' has no host '{label}'")
            return await proxy_flow.proxy_config(
                cfg, pool, env, label, domain, bus, stamp=stamp_now(), path=path, root=root,
                api=api, write=not print_only)

    result, outcome = run_logged(go, logs)
    if json_out:
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.config)  # as is: a console would wrap long lines
        if result.path and not result.restored:
            kept = f" (previous file kept as {result.backup})" if result.backup else ""
            err_console.print(f"written to {result.host}:{result.path}{kept}", highlight=False,
                              markup=False)
        if result.nginx is None:
            err_console.print(f"nginx is not installed on {result.host}: not validated",
                              style="yellow", highlight=False, markup=False)
        elif result.validated:
            err_console.print(f"nginx -t: ok. Apply it with `nginx -s reload` on {result.host}",
                              style="green", highlight=False, markup=False)
        elif result.validated is False:
            back = ("the previous state is back" if result.restored
                    else "putting the previous state back FAILED")
            err_console.print(f"nginx -t refused it; {back}:\n{result.nginx_output}",
                              style="red", highlight=False, markup=False)
    if outcome is not None and not outcome.ok:
        raise typer.Exit(outcome.exit_code)
