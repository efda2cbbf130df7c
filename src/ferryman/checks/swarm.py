"""Swarm environments, asked of their manager: nodes down or drained, services short of
replicas, tasks rejected and why, and eligible nodes lacking a service's image (`--fix` loads
it there from a node that has it, verified by id, and labels the node as holding it)."""

from __future__ import annotations

import asyncio
import time

from ..docker import images as di
from ..events import EventBus
from ..flows.transfer import ImageToSend, LayerTransfer, verify
from ..swarm import commands as sc
from ..swarm import facts as sf
from ..swarm.facts import json_list
from ..swarm.release import manager_label, node_host
from ..swarm.status import ServiceView, SwarmView, images_on, read_status
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "swarm"


async def run(ctx: HostContext) -> list[Finding]:
    env = ctx.cfg.environments[ctx.env]
    if env.swarm is None or manager_label(ctx.cfg, ctx.env) != ctx.label:
        return []
    view = await read_status(ctx.cfg, ctx.pool, ctx.env)
    if view.error:
        return [fail(NAME, "manager", view.error)]
    out = []
    for n in view.nodes:
        if not n.up:
            out.append(warn(NAME, f"node {n.hostname}", f"{n.hostname} is {n.state}: its "
                            "tasks run elsewhere; a release loads no image there"))
        elif n.availability != "active":
            out.append(warn(NAME, f"node {n.hostname}", f"{n.hostname} is {n.availability}ed:"
                            " it takes no new tasks"))
    for s in view.services:
        out.extend(_service(ctx, view, s))
    return out


def _service(ctx: HostContext, view: SwarmView, s: ServiceView) -> list[Finding]:
    svc, out = s.swarm, []
    desired = svc.replicas
    running = len(s.running)
    where = ", ".join(sorted({t.node for t in s.running})) or "no node"
    if desired is not None and running < desired:
        out.append(fail(NAME, s.service, f"{svc.name}: {running}/{desired} tasks running "
                        f"(on {where})", data=s.to_dict()))
    else:
        wanted = desired if desired is not None else "global"
        out.append(ok(NAME, s.service, f"{svc.name}: {running}/{wanted} tasks running "
                      f"{svc.image} (on {where})", data=s.to_dict()))
    rejected = [t for t in s.rejected if t.image == svc.image][:5]
    if rejected and running < (desired or 0):
        out.append(fail(NAME, f"{s.service} tasks", f"{svc.name}: tasks rejected: " + "; ".join(
            f"{t.node}: {t.error}" for t in rejected)))
    for node, why in s.lacking.items():
        fix = None
        if why.startswith("lacks"):
            fix = _load_fix(ctx, view, s, node)
        out.append(fail(NAME, f"{s.service} on {node}",
                        f"{node} may run {svc.name} but {why}: Swarm would reject its tasks "
                        "there (No such image)", fix=fix))
    return out


def _load_fix(ctx: HostContext, view: SwarmView, s: ServiceView, node: str) -> Fix | None:
    """Streams the image from a node that holds it, verifies its id, labels the node."""
    svc = s.swarm
    target = next(n for n in view.nodes if n.hostname == node)
    dst_label = node_host(ctx.cfg, ctx.env, target)
    holders = [n for n in view.nodes if n.up and n.hostname not in s.lacking
               and node_host(ctx.cfg, ctx.env, n) is not None]
    if dst_label is None or not holders:
        return None
    src_label = node_host(ctx.cfg, ctx.env, holders[0])
    assert src_label is not None

    async def apply() -> str:
        src, dst = ctx.pool.host(ctx.env, src_label), ctx.pool.host(ctx.env, dst_label)
        res = await src.run(di.inspect_images([svc.image]), timeout=60)
        img = (json_list(res.stdout) or [{}])[0]
        image = ImageToSend(svc.image, img.get("Id", ""), int(img.get("Size") or 0),
                            list((img.get("RootFS") or {}).get("Layers") or []))
        if not image.image_id:
            raise RuntimeError(f"{svc.image} is gone from {src_label}")
        said = f"{svc.image} was already on {node}"
        # Several services may name one image: the first fix loads it for all.
        if (await images_on(ctx.pool, ctx.env, dst_label, [svc.image])).get(
                svc.image) != image.image_id:
            transfer = LayerTransfer()
            sent = await transfer.send(await transfer.prepare(src, dst, [image]),
                                       EventBus("doctor"))
            await verify(dst, [image])
            said = f"{svc.image} loaded on {node} from {src_label} ({sent.wire_bytes} bytes)"
        for argv in sc.label_nodes(sc.image_label(image.image_id), [target.id], add=True):
            await ctx.host.run(argv, timeout=60, check=True)
        placed = await _settle(ctx, svc.name)
        return f"{said}, node labelled {sc.image_label(image.image_id)}{placed}"

    return Fix(f"load {svc.image} on {node} from {holders[0].hostname}, verify its id, label "
               "the node as holding it", safe=True, apply=apply,
               commands=[f"{src_label}: docker save {svc.image} | {dst_label}: docker load",
                         f"{ctx.label}: docker node update --label-add "
                         f"{sc.image_label('<id>')}=true {target.id}"])


async def _settle(ctx: HostContext, name: str, wait: float = 60) -> str:
    """Tasks kept pending for want of the image are placed once the node is labelled: wait
    (bounded) for them, so the check run again after the fix sees the service whole."""
    deadline = time.monotonic() + wait
    while True:
        svc = sf.parse_services((await ctx.host.run(sc.inspect_services([name]),
                                                    timeout=60)).stdout).get(name)
        tasks = sf.parse_tasks((await ctx.host.run(sc.service_tasks(name), timeout=60)).stdout)
        running = sum(1 for t in tasks if t.desired == "running" and t.state == "running")
        if svc is None or svc.replicas is None or running >= svc.replicas:
            return ""
        if time.monotonic() > deadline:
            return f"; {name} has {running}/{svc.replicas} tasks running after {wait:g}s"
        await asyncio.sleep(2)
