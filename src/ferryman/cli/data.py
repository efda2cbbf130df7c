"""`ferryman backup`, `backups`, `restore`, `sync-data`: data, consistent and never lost."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from ..data import archive as ar
from ..errors import EXIT_BAD_INPUT, BadInput
from ..flows import data as flow
from ..flows.data import restic
from ..hosts import open_pool
from .common import (
    confirm,
    err_console,
    execute,
    exit_with,
    fail,
    human_bytes,
    load,
    make_bus,
    out_console,
    print_json,
    run_logged,
)


def backup(
    ctx: typer.Context,
    args: list[str] = typer.Argument(..., metavar="ENV | verify ENV ID | offsite ENV ID",
                                     help="ENV to back up, `verify ENV ID`, or `offsite ENV "
                                     "ID` (copy a backup to data.offsite)."),
    discover: bool = typer.Option(False, "--discover",
                                  help="List the volumes and folders the app's containers mount."),
    download: Path = typer.Option(None, "--download", help="Also copy the backup into DIR."),
    drill: bool = typer.Option(False, "--drill", help="verify: also unpack into a scratch "
                               "folder and count, touching nothing live."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (verify, --discover)."),
    offsite: bool = typer.Option(False, "--offsite", help="Then copy it to data.offsite, "
                                 "verified there."),
) -> None:
    """Stop the business containers, snapshot volumes and folders, start them again."""
    cfg = load(ctx)
    if args[0] == "offsite":
        if len(args) != 3:
            raise fail("usage: ferryman backup offsite ENV ID", EXIT_BAD_INPUT)
        return _offsite(ctx, cfg, args[1], args[2], dry_run)
    if args[0] == "verify":
        if len(args) != 3:
            raise fail("usage: ferryman backup verify ENV ID", EXIT_BAD_INPUT)
        return _verify(cfg, args[1], args[2], drill, json_out)
    if len(args) != 1:
        raise fail("usage: ferryman backup ENV  (or: ferryman backup verify ENV ID)",
                   EXIT_BAD_INPUT)
    env = args[0]
    if discover:
        return _discover(cfg, env, json_out)
    bus, logs = make_bus(ctx, cfg, "backup")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            if cfg.data and cfg.data.restic:
                done, took = await restic.backup(cfg, pool, env, bus, dry_run)
                if took is not None:
                    err_console.print(f"restic snapshot {took.snapshot}: {took.files} files, "
                                      f"{human_bytes(took.bytes)} read, "
                                      f"{human_bytes(took.added)} new", highlight=False)
                return done.exit_code
            outcome, m = await flow.backup(cfg, pool, env, bus, dry_run)
            if outcome.ok and m is not None:
                err_console.print(f"backup {m.id} on {m.host}: {len(m.items)} item(s), "
                                  f"{human_bytes(m.total_bytes)}", highlight=False)
                if download:
                    where = await flow.download(flow.site(cfg, pool, env), m, download)
                    err_console.print(f"downloaded to {where}", highlight=False)
                if offsite:
                    return (await flow.copy_flow(cfg, pool, env, m.id, bus)).exit_code
            return outcome.exit_code

    exit_with(run_logged(go, logs))


def _offsite(ctx: typer.Context, cfg, env: str, bid: str, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    bus, logs = make_bus(ctx, cfg, "backup")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            return (await flow.copy_flow(cfg, pool, env, bid, bus, dry_run)).exit_code

    exit_with(run_logged(go, logs))


def _verify(cfg, env: str, bid: str, drill: bool, json_out: bool) -> None:  # type: ignore[no-untyped-def]
    async def go() -> list[str]:
        async with open_pool(cfg) as pool:
            s = flow.site(cfg, pool, env)
            if cfg.data and cfg.data.restic:
                return [await restic.verify(s)]
            return await flow.checked(s, await flow.read_manifest(s, bid), drill)

    said = execute(go)
    if json_out:
        print_json({"id": bid, "ok": True, "checks": said})
    else:
        for line in said:
            out_console.print(f"{bid}: {line}", highlight=False)


def _discover(cfg, env: str, json_out: bool) -> None:  # type: ignore[no-untyped-def]
    async def go() -> list[flow.Mount]:
        async with open_pool(cfg) as pool:
            return await flow.discover(cfg, pool, env)

    rows = execute(go)
    if json_out:
        print_json([vars(r) for r in rows])
        return
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("host", "container", "type", "volume or folder", "mounted at", "rw"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.host, r.container, r.type, r.name, r.destination,
                      "yes" if r.rw else "no")
    out_console.print(table)
    err_console.print("put volumes under data.volumes and folders under data.paths",
                      highlight=False)


def backups(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment."),
    offsite: bool = typer.Option(False, "--offsite", help="The copies kept off-site "
                                 "(data.offsite) instead."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The backups kept on ENV's data host (or off-site), oldest first."""
    cfg = load(ctx)

    async def go() -> tuple[list[ar.Manifest], dict[str, dict[str, object]]]:
        async with open_pool(cfg) as pool:
            if offsite:
                pool.env(env)
                return await flow.list_copies(flow.vault(cfg, pool, env)), {}
            if cfg.data and cfg.data.restic:
                return [ar.Manifest(x.bid, cfg.project, env, x.id, x.time, "restic", "",
                                    kind="restic", source=" ".join(x.paths))
                        for x in await restic.snapshots(flow.site(cfg, pool, env))], {}
            s = flow.site(cfg, pool, env)
            return await flow.list_backups(s), await flow.read_checks(s)

    found, checks = execute(go)
    if json_out:
        print_json([{**ar.to_dict(m), "check": checks.get(m.id)} for m in found])
        return
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("id", "kind", "created", "from", "items", "data", "archives", "checked"):
        table.add_column(col, overflow="fold")
    for m in found:
        rec = checks.get(m.id) or {}
        # A backup whose latest check failed is flagged: retention does not count it.
        said = "-" if "ok" not in rec else f"{rec.get('kind')} ok" if rec["ok"] else "FAILED"
        table.add_row(m.id, m.kind, m.created.replace("T", " ")[:19], m.source or m.env,
                      str(len(m.items)), human_bytes(m.total_bytes), human_bytes(m.archive_bytes),
                      said)
    out_console.print(table)


def restore(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment to restore."),
    bid: str = typer.Argument(None, metavar="ID", help="Backup id (see ferryman backups)."),
    from_file: Path = typer.Option(None, "--from-file", help="Upload a downloaded backup "
                                   "folder first, and restore it."),
    from_offsite: bool = typer.Option(False, "--from-offsite", help="Bring ID back from its "
                                      "off-site copy first (the data host lost its own)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Put a backup back: safety backup first, staged beside the live data, swapped in."""
    cfg = load(ctx)
    if not bid and not from_file:
        raise fail("give a backup ID or --from-file DIR", EXIT_BAD_INPUT)
    bus, logs = make_bus(ctx, cfg, "restore")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            wanted = bid
            if from_file:
                if dry_run:
                    raise BadInput("--from-file uploads: it cannot be a dry run")
                confirm(cfg, env, f"upload {from_file} and restore it on {env}", yes)
                wanted = await flow.upload(flow.site(cfg, pool, env), from_file)
            elif from_offsite:
                if cfg.data and cfg.data.restic:
                    raise BadInput("--from-offsite: with data.restic the repository is the "
                                   "copy kept away; restore ID from it directly")
                if dry_run:
                    raise BadInput("--from-offsite copies the backup back: it cannot be a "
                                   "dry run")
                confirm(cfg, env, f"fetch off-site copy {bid} and restore it on {env}", yes)
                await flow.fetch(flow.site(cfg, pool, env), flow.vault(cfg, pool, env), bid,
                                 bus)
            elif not dry_run:
                confirm(cfg, env, f"replace the data of {env} with backup {bid}", yes)
            if cfg.data and cfg.data.restic:
                return (await restic.restore(cfg, pool, env, wanted, bus, dry_run)).exit_code
            outcome, _ = await flow.restore(cfg, pool, env, wanted, bus, dry_run)
            return outcome.exit_code

    exit_with(run_logged(go, logs))


def sync_data(
    ctx: typer.Context,
    src: str = typer.Argument(..., metavar="FROM", help="Environment whose data to take."),
    dst: str = typer.Argument(..., metavar="TO", help="Environment whose data to replace."),
    mask: bool = typer.Option(False, "--mask", help="Run each dump's mask rules on TO before "
                              "its services start (required where TO's policy is masked)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Snapshot FROM stop-clean, stream it to TO, and apply it there (safety backup first)."""
    cfg = load(ctx)
    bus, logs = make_bus(ctx, cfg, "sync-data")

    async def go() -> int:
        async with open_pool(cfg, bus) as pool:
            pool.env(src)
            pool.env(dst)
            flow.rules_for(cfg, dst, mask)  # refused before any question
            if not dry_run:
                confirm(cfg, dst, f"replace the data of {dst} with a snapshot of {src}", yes)
            outcome, _ = await flow.sync(cfg, pool, src, dst, bus, dry_run, mask)
            return outcome.exit_code

    exit_with(run_logged(go, logs))

