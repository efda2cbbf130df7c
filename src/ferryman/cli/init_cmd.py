"""`ferryman init`: read what runs on the servers and propose a ferryman.yml."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import typer

from ..config import ConfigError, load_config
from ..errors import EXIT_BAD_INPUT, EXIT_FLOW_FAILED, BadInput
from ..hosts import open_pool
from ..init import request
from ..init.facts import HostFacts
from ..init.propose import Proposal, propose
from ..init.render import render
from ..init.survey import survey
from .common import err_console, execute, fail, options, print_json

READ_ONLY = ("read-only: init ran docker ps and inspect, ip addr, find and base64 on config "
             "files under bind mounts, and HTTP GETs to published ports from the host itself; "
             "nothing was changed on {hosts}")


def init(
    ctx: typer.Context,
    envs: list[str] = typer.Option(
        None, "--env", metavar="NAME=[user@]HOST[:PORT]",
        help="An environment and a host of it to read, e.g. test=root@203.0.113.7; the first "
             "is where releases come from. Repeat for each environment (and each host)."),
    addresses: list[str] = typer.Option(
        None, "--address", metavar="NAME=ADDRESS",
        help="How others reach an environment, where that is not its SSH host (a tunnel, "
             "NAT): what its config files should name."),
    identity_file: str | None = typer.Option(None, "--identity-file", "-i",
                                      help="SSH private key for every host."),
    known_hosts: str | None = typer.Option(None, "--known-hosts",
                                    help="known_hosts file for every host."),
    project: str | None = typer.Option(None, "--project", help="Project name (default: guessed)."),
    write: bool = typer.Option(False, "--write", help="Write the proposal to the -c path "
                               "(ferryman.yml) instead of printing it."),
    force: bool = typer.Option(False, "--force", help="With --write: replace an existing "
                               "file, keeping it as FILE.bak-DATE."),
    json_out: bool = typer.Option(False, "--json", help="Print the raw findings as JSON."),
) -> None:
    """Read every container on every host and propose a ferryman.yml (changes nothing there)."""
    target = options(ctx).config
    try:
        req = request.build(envs or [], addresses, identity_file=_path(identity_file),
                            known_hosts=_path(known_hosts), project=project)
    except BadInput as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    if force and not write:
        raise fail("--force only goes with --write", EXIT_BAD_INPUT)
    if write and target.exists() and not force:
        raise fail(f"{target} exists: init does not write over it",
                   EXIT_BAD_INPUT, hint="pass --force to replace it (the old file is kept as "
                   f"{target.name}.bak-DATE), or -c OTHER.yml to write elsewhere")
    cfg = request.connect_config(req)

    async def go() -> list[HostFacts]:
        async with open_pool(cfg) as pool:
            return await survey(pool, req)

    facts = execute(go)
    hosts = ", ".join(h.host for h in facts)
    proposal = propose(req, facts)
    now = datetime.now(UTC)
    text = render(proposal, _header(req, now))
    _validate(text, target)
    err_console.print(READ_ONLY.format(hosts=hosts), style="dim", highlight=False)
    if json_out:
        print_json({"read_only": True, "hosts": [h.to_dict() for h in facts],
                    "proposal": dataclasses.asdict(proposal), "yaml": text})
    elif not write:
        typer.echo(text, nl=False)
    if write:
        _write(target, text, now)
    _summary(proposal, target if write else None, req)


def _write(target: Path, text: str, now: datetime) -> None:
    """Writes the file whole or not at all; an existing one (--force) is copied aside first."""
    if target.exists():
        backup = target.with_name(f"{target.name}.bak-{now:%Y%m%d-%H%M%S}")
        shutil.copy2(target, backup)
        err_console.print(f"kept the previous {target} as {backup}", highlight=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _path(value: str | None) -> str | None:
    """Paths go into ferryman.yml: absolute, so the file works from any folder."""
    if value is None or value.startswith("~"):
        return value
    return str(Path(value).resolve())


def _header(req: request.Request, now: datetime) -> list[str]:
    envs = "; ".join(f"{e.name}: {', '.join(h.address for h in e.hosts)}" for e in req.envs)
    return [f"ferryman.yml proposed by `ferryman init` on {now:%Y-%m-%d} from {envs}.",
            "Every guessed value has a comment above it: why it was chosen, and what to check. "
            "What init could not decide is listed at the end.",
            f"Then: ferryman config check, and ferryman release {req.source} "
            f"{req.envs[-1].name} --dry-run", ""]


def _validate(text: str, target: Path) -> None:
    """The proposal must load through the same loader as every command: a proposal that does
    not is init's fault, and is never written."""
    with tempfile.TemporaryDirectory(prefix="ferryman-init-") as tmp:
        path = Path(tmp) / target.name
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path, environ={})
        except ConfigError as exc:
            err_console.print(text, markup=False, highlight=False)
            raise fail(f"the proposal does not validate (nothing was written): {exc}",
                       EXIT_FLOW_FAILED) from None


def _n(count: int, word: str) -> str:
    if count == 1 or word.startswith("never"):
        return f"{count} {word}"
    head, _, tail = word.partition(" ")
    return f"{count} {head}s{' ' + tail if tail else ''}"


def _summary(p: Proposal, written: Path | None, req: request.Request) -> None:
    counts = ", ".join(_n(n, w) for n, w in (
        (len(p.services), "service"), (len(p.volumes), "volume"), (len(p.paths), "folder"),
        (len(p.stop), "container to stop"), (len(p.never_stop), "never stopped"),
        (len(p.guards), "guard")))
    where = f"wrote {written}: " if written else "proposed: "
    err_console.print(where + counts, style="green", highlight=False)
    if p.undecided:
        err_console.print(f"{len(p.undecided)} things not decided (listed at the end of the "
                          "file):", style="yellow", highlight=False)
        for u in p.undecided:
            err_console.print(f"  - {u}", highlight=False, markup=False)
    if written:
        config = "" if written == Path("ferryman.yml") else f"-c {written} "
        err_console.print(f"next: ferryman {config}config check && ferryman {config}release "
                          f"{req.source} {req.envs[-1].name} --dry-run", highlight=False)
