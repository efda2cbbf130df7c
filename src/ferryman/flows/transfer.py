"""Moving images from one host to another with no registry and nothing on the operator's disk.

`StreamTransfer` streams `docker save` on the source into `docker load` on the target through
the operator's process (the `scp -3` way), compressed when both ends can. `LayerTransfer` (the
default) does the same but leaves on the source the layers the target already holds
(docker/layers.py), and falls back to the whole image where a partial load cannot work.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from ..docker import images as di
from ..docker import layers as dl
from ..errors import Mismatch
from ..events import EventBus
from ..transport import CommandFailed, Host, Result
from ..transport.base import short_command
from ..transport.pipe import PipeResult, pipe_many


@dataclass
class ImageToSend:
    ref: str  # what is saved, and what the target is tagged with
    image_id: str
    size: int  # uncompressed, from `docker image inspect`
    diff_ids: list[str] = field(default_factory=list)  # RootFS.Layers, base first


@dataclass
class Sent:
    wire_bytes: int
    compression: str
    seconds: float


class ImageMismatch(Mismatch):
    def __init__(self, message: str, host: str | None = None) -> None:
        super().__init__(message, "run the release again; if it repeats, compare "
                         "`docker image inspect` on both", host=host)


@dataclass
class Prepared:
    """A transfer as planned: the exact commands it runs on each side (what a dry run shows)."""

    src: Host
    dst: Host
    images: list[ImageToSend]
    compression: str
    source_argv: list[str]
    sink_argv: list[str]
    skip: dl.Skip | None = None  # layers left on the source (None: the whole images)
    whole_because: str | None = None  # why every layer is sent, when layers could be shared

    def lines(self) -> list[str]:
        out = [f"{self.src.label}: {short_command(self.source_argv)}",
               f"  | {self.dst.label}: {short_command(self.sink_argv)}"]
        if self.skip is not None:
            out.append(f"  (leaves out {self.skip.layers} layer(s) {self.dst.label} has: "
                       + " ".join(self.skip.members) + ")")
        return out

    def whole(self) -> list[str]:
        return di.save([i.ref for i in self.images], self.compression)


class Transfer(Protocol):
    async def prepare(self, src: Host, dst: Host, images: list[ImageToSend]) -> Prepared:
        ...

    async def send(self, p: Prepared, bus: EventBus) -> Sent:
        ...

    async def send_many(self, ps: list[Prepared], bus: EventBus) -> Sent:
        """The same stream to several targets, read once from the source."""
        ...


async def tools(host: Host) -> set[str]:
    res = await host.run(di.compressors(), timeout=30)
    return set(res.stdout.split())


async def verify(dst: Host, images: list[ImageToSend]) -> None:
    """The target must now hold exactly the source's image under each ref."""
    for img in images:
        res = await dst.run(di.image_id(img.ref), timeout=30)
        got = res.stdout.strip()
        if got != img.image_id:
            raise ImageMismatch(
                f"after the load, {dst.label} has {img.ref} = {got or 'nothing'}, "
                f"expected {img.image_id}", host=dst.label)


class StreamTransfer:
    async def prepare(self, src: Host, dst: Host, images: list[ImageToSend]) -> Prepared:
        """Compression is chosen while planning (zstd where both ends have it, else gzip,
        else none), so the dry run shows the very commands the transfer runs."""
        compression = di.pick_compression(await tools(src), await tools(dst))
        return Prepared(src, dst, images, compression,
                        di.save([i.ref for i in images], compression), di.load(compression))

    async def send(self, p: Prepared, bus: EventBus) -> Sent:
        return await self.send_many([p], bus)

    async def send_many(self, ps: list[Prepared], bus: EventBus) -> Sent:
        """One `docker save` on the source into the `docker load` of every target at once
        (targets whose plan is the same stream: same images, compression and layers)."""
        first = ps[0]
        src, images, compression = first.src, first.images, first.compression
        names = ", ".join(p.dst.label for p in ps)
        total = sum(i.size for i in images)
        task = f"{src.label}->{names}"
        desc = f"{src.label} -> {names} ({compression})"

        def progress(n: int) -> None:
            bus.emit("progress", task=task, description=desc, completed=min(n, total),
                     total=total)

        def sinks(some: list[Prepared]) -> list[tuple[Host, list[str]]]:
            return [(p.dst, p.sink_argv) for p in some]

        t0 = time.monotonic()
        res = await pipe_many(src, first.source_argv, sinks(ps), on_progress=progress)
        wire = res.bytes
        results = dict(zip([p.dst.label for p in ps], res.sinks, strict=True))
        redo = ps if not res.source.ok else [p for p in ps if not results[p.dst.label].ok]
        if first.skip is not None and redo:
            # A target lost a layer since the plan (an image removed), or the filter could
            # not work: send those the whole images, once.
            failed = res.source if not res.source.ok else results[redo[0].dst.label]
            # The tool's own words, then the wrapper's account of the exit statuses.
            said = "; ".join((failed.stderr or failed.stdout).strip().splitlines()[-2:])
            bus.warn(f"sending only the missing layers to {', '.join(p.dst.label for p in redo)}"
                     f" failed ({said or '?'}): sending the whole images")
            again = await pipe_many(src, first.whole(), sinks(redo), on_progress=progress)
            wire += again.bytes
            res = PipeResult(again.source, res.sinks, wire)
            results.update(zip([p.dst.label for p in redo], again.sinks, strict=True))
        said = next((line for line in (res.source.stderr or "").splitlines()
                     if line.startswith(di.NOT_IN_TAR)), None)
        if first.skip is not None and said:
            bus.warn(f"on {src.label}, {said.removeprefix(di.NOT_IN_TAR)}: the layers they "
                     "stood for went along (more bytes than planned; the load is whole)")
        bus.emit("progress", task=task, description=desc, completed=total, total=total,
                 done=True)
        if not res.source.ok:
            raise CommandFailed(res.source, f"docker save on {src.label} failed")
        for p in ps:
            if not results[p.dst.label].ok:
                raise CommandFailed(results[p.dst.label], f"docker load on {p.dst.label} failed")
        for p in ps:
            await verify(p.dst, images)
        seconds = time.monotonic() - t0
        left = (f", {first.skip.layers} layer(s) {names} had left out" if first.skip else "")
        bus.info(f"sent {len(images)} image(s) {src.label} -> {names}: {wire} bytes on "
                 f"the wire ({compression}) for {total} bytes of images{left} in "
                 f"{seconds:.1f}s", wire_bytes=wire, image_bytes=total, compression=compression)
        return Sent(wire, compression, seconds)


class LayerTransfer(StreamTransfer):
    """Sends only the layers the target lacks, where both ends allow it. One instance plans
    one release: what it learns of a source (its tools, its tar's layer names) is asked once
    however many targets it serves."""

    def __init__(self) -> None:
        self._sources: dict[str, asyncio.Future[tuple[set[str], dl.HostFacts]]] = {}
        self._manifests: dict[tuple[str, tuple[str, ...]], asyncio.Future[Result]] = {}

    def _source(self, src: Host) -> asyncio.Future[tuple[set[str], dl.HostFacts]]:
        async def read() -> tuple[set[str], dl.HostFacts]:
            found, facts = await asyncio.gather(tools(src), src.run(dl.host_facts(), timeout=30))
            return found, dl.parse_host_facts(facts.stdout)

        if src.label not in self._sources:
            self._sources[src.label] = asyncio.ensure_future(read())
        return self._sources[src.label]

    def _manifest(self, src: Host, refs: list[str]) -> asyncio.Future[Result]:
        key = (src.label, tuple(refs))
        if key not in self._manifests:  # a whole local `docker save`: once per source
            self._manifests[key] = asyncio.ensure_future(
                src.run(dl.legacy_manifest(refs), timeout=600))
        return self._manifests[key]

    async def prepare(self, src: Host, dst: Host, images: list[ImageToSend]) -> Prepared:
        (src_tools, sf), dst_tools, dst_facts, have = await asyncio.gather(
            self._source(src), tools(dst), dst.run(dl.host_facts(), timeout=30),
            dst.run(dl.all_layers(), timeout=120))
        compression = di.pick_compression(src_tools, dst_tools)
        p = Prepared(src, dst, images, compression, di.save([i.ref for i in images],
                                                            compression), di.load(compression))
        held = dl.parse_all_layers(have.stdout) if have.ok else set()
        df = dl.parse_host_facts(dst_facts.stdout)
        diffs = [i.diff_ids for i in images]
        shared, _ = dl.skippable(diffs, held)
        if not shared or not all(diffs):
            return p  # nothing in common: the whole images, nothing to explain
        if df.containerd_store:
            p.whole_because = (f"{dst.label} uses the containerd image store, where a partial "
                               "load fails")
        elif not sf.gnu_tar:
            p.whole_because = f"{src.label} has no GNU tar to leave layers out of the stream"
        if p.whole_because:
            return p
        if sf.oci_save:
            p.skip = dl.oci_skip(diffs, held)
        elif sf.computable_paths and sf.epoch:
            p.skip = dl.computed_skip(diffs, held, sf.epoch)
        else:
            refs = [i.ref for i in images]
            manifest = await self._manifest(src, refs)
            try:
                p.skip = dl.legacy_skip(diffs, held, manifest.stdout) if manifest.ok else None
            except ValueError as exc:
                p.whole_because = f"the tar of {src.label} is not as expected ({exc})"
            if manifest.ok is False:
                p.whole_because = f"{src.label} could not list its tar's layers"
        if p.skip is not None and p.skip.members:
            p.source_argv = di.save_without([i.ref for i in images], compression,
                                            p.skip.members)
        else:
            p.skip = None
        return p
