"""`ferryman status` for Swarm environments: nodes, and per service its tasks."""

from __future__ import annotations

import asyncio

from rich import box
from rich.markup import escape
from rich.table import Table

from ..config import Config
from ..hosts import open_pool
from ..swarm.status import SwarmView, read_status
from .common import execute, out_console


def read(cfg: Config, envs: list[str]) -> list[SwarmView]:
    chosen = [e for e in envs if e in cfg.environments and cfg.environments[e].swarm]
    if not chosen:
        return []

    async def go() -> list[SwarmView]:
        async with open_pool(cfg) as pool:
            return list(await asyncio.gather(*(read_status(cfg, pool, e) for e in chosen)))

    return execute(go)


def render(views: list[SwarmView]) -> None:
    for v in views:
        if v.error:
            out_console.print(f"[bold red]{escape(v.env)}: {escape(v.error)}[/]")
            continue
        nodes = ", ".join(f"{n.hostname} ({n.role}, {n.state}"
                          + (f", {n.availability}" if n.availability != "active" else "") + ")"
                          for n in v.nodes)
        out_console.print(f"{escape(v.env)}: Swarm, manager {escape(v.manager)}; nodes: "
                          f"{escape(nodes)}", highlight=False)
        table = Table(box=box.SIMPLE_HEAD)
        for col in ("SERVICE", "SWARM SERVICE", "TASKS", "IMAGE", "UPDATE", "PROBLEMS"):
            table.add_column(col)
        for s in v.services:
            d = s.to_dict()
            wanted = "global" if d["desired"] is None else str(d["desired"])
            problems = [f"rejected on {r['node']}: {r['error']}" for r in d["rejected"][:3]]
            problems += [f"{n}: {why}" for n, why in s.lacking.items()]
            style = "" if not problems and (d["desired"] is None
                                            or d["running"] >= d["desired"]) else "bold red"
            table.add_row(s.service, s.swarm.name,
                          f"[{style}]{d['running']}/{wanted}[/]" if style else
                          f"{d['running']}/{wanted}",
                          escape(s.swarm.image), escape(str(d["update"]["state"] or "-")),
                          escape("\n".join(problems)) or "-")
        out_console.print(table)
