"""firewall: a table left by firewalld on the forward hook while firewalld is not running.

Source note 000: PROD had once run firewalld; its `table inet firewalld` stayed in nftables
after the service stopped and kept rejecting forwarded packets, so containers on one bridge
got "No route to host" from each other while the host itself reached them. The fix saves the
ruleset, deletes those tables and masks firewalld so it cannot come back half-configured.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..state import state_dir
from ..transport import CommandFailed
from . import commands as cc
from . import nft
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "firewall"


@dataclass
class FirewalldState:
    systemd: bool
    active: bool  # the service or its process runs
    enabled: str = ""


def parse_firewalld(stdout: str) -> FirewalldState:
    facts = dict(line.partition(" ")[::2] for line in stdout.splitlines() if line.strip())
    active = facts.get("active", "").strip() == "active" or facts.get("process") == "yes"
    return FirewalldState(facts.get("systemd") == "yes", active, facts.get("enabled", "").strip())


def backup_path(project: str, stamp: str) -> str:
    return f"{state_dir(project)}/doctor/nft-ruleset-{stamp}.nft"


async def read(ctx: HostContext) -> tuple[list[nft.Table], FirewalldState, str | None]:
    """Tables, firewalld's state, and why the ruleset could not be read (None when it was)."""
    rs = await ctx.ruleset()
    fw = parse_firewalld((await ctx.firewalld()).stdout)
    if rs.exit_status == 127:
        return [], fw, "nft is not installed"
    if not rs.ok:
        return [], fw, (rs.stderr.strip().splitlines() or [f"exit {rs.exit_status}"])[-1]
    return nft.parse_ruleset(rs.stdout), fw, None


def _fix(ctx: HostContext, tables: list[nft.Table], fw: FirewalldState) -> Fix:
    path = backup_path(ctx.cfg.project, ctx.stamp)
    deletes = [cc.delete_table(t.family, t.name) for t in tables]
    commands = [f"nft list ruleset > {path}"] + [" ".join(d) for d in deletes]
    if fw.systemd:
        commands.append("systemctl disable --now firewalld; systemctl mask firewalld")

    async def apply() -> str:
        saved = await ctx.run(cc.save_ruleset(path))
        if not saved.ok:
            raise CommandFailed(saved, f"could not save the ruleset to {path}")
        for argv in deletes:
            await ctx.host.run(argv, timeout=30, check=True)
        done = [f"saved the ruleset to {path} (restore: nft -f {path})",
                "deleted table " + ", ".join(t.spec for t in tables)]
        masked = await ctx.run(cc.mask_firewalld())
        said = masked.stdout.strip().splitlines()
        done.append(said[-1] if said and "nothing to mask" in said[-1] else "firewalld masked")
        return "; ".join(done)

    return Fix(f"save the ruleset to {path}, delete table "
               f"{', '.join(t.spec for t in tables)}"
               + (", mask firewalld" if fw.systemd else ""),
               safe=True, apply=apply, commands=commands, recheck=("networks", "reach"))


async def run(ctx: HostContext) -> list[Finding]:
    tables, fw, error = await read(ctx)
    rs = await ctx.ruleset()
    fw_ev = ctx.evidence(await ctx.firewalld())
    if error is not None:
        level = ok if error == "nft is not installed" else warn
        return [level(NAME, "nftables", f"cannot read the nftables ruleset: {error}",
                      evidence=[ctx.evidence(rs)])]
    out = []
    residual = nft.firewalld_tables(tables)
    blocking = nft.residual_forward(tables)
    ev = [ctx.evidence(rs, "\n".join(nft.table_text(rs.stdout, t) for t in residual)), fw_ev]
    data = {"tables": [t.spec for t in residual], "firewalld_active": fw.active,
            "systemd": fw.systemd}
    if blocking and not fw.active:
        chains = "; ".join(nft.describe(t) for t in blocking)
        out.append(fail(
            NAME, "firewalld leftovers",
            f"table {', '.join(t.spec for t in blocking)} is still hooked on forward "
            f"({chains}) while firewalld is not running: it rejects traffic between "
            "containers (\"No route to host\") and forwarded traffic to published ports, "
            "while the host itself still reaches them", evidence=ev, data=data,
            fix=_fix(ctx, residual, fw)))
    elif residual and not fw.active:
        out.append(warn(NAME, "firewalld leftovers",
                        f"table {', '.join(t.spec for t in residual)} is left from firewalld, "
                        "which is not running (no blocking forward rule yet)",
                        evidence=ev, data=data, fix=_fix(ctx, residual, fw)))
    elif residual:
        out.append(warn(NAME, "firewalld", "firewalld is running: its forward rules apply to "
                        "container traffic too", evidence=ev, data=data,
                        fix=Fix("make sure Docker's bridges are trusted: `firewall-cmd "
                                "--get-active-zones`, `firewall-cmd --zone=trusted "
                                "--add-interface=docker0 --permanent`")))
    else:
        out.append(ok(NAME, "firewalld leftovers", "no firewalld table in nftables"
                      + (" (firewalld is running)" if fw.active else ""), data=data))
    for t, c in nft.other_blocking(tables, "forward"):
        out.append(warn(NAME, t.spec, f"chain {c.name} of table {t.spec} drops forwarded "
                        "traffic by default (policy drop): containers may not reach each "
                        "other or be reached through published ports",
                        evidence=[ctx.evidence(rs, nft.table_text(rs.stdout, t))],
                        fix=Fix(f"allow Docker's bridges in {t.spec} chain {c.name}, or make "
                                "its policy accept")))
    return out
