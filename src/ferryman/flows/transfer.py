"""Moving images from one host to another with no registry and nothing on the operator's disk.

`StreamTransfer` streams `docker save` on the source into `docker load` on the target through
the operator's process (the `scp -3` way), compressed when both ends can. It is one
implementation of `Transfer`, so a layer-aware transfer can replace it without touching flows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from ..docker import images as di
from ..errors import Mismatch
from ..events import EventBus
from ..transport import CommandFailed, Host, pipe
from ..transport.base import short_command


@dataclass
class ImageToSend:
    ref: str  # what is saved, and what the target is tagged with
    image_id: str
    size: int  # uncompressed, from `docker image inspect`


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

    def lines(self) -> list[str]:
        return [f"{self.src.label}: {short_command(self.source_argv)}",
                f"  | {self.dst.label}: {short_command(self.sink_argv)}"]


class Transfer(Protocol):
    async def prepare(self, src: Host, dst: Host, images: list[ImageToSend]) -> Prepared:
        ...

    async def send(self, p: Prepared, bus: EventBus) -> Sent:
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
        src, dst, images, compression = p.src, p.dst, p.images, p.compression
        total = sum(i.size for i in images)
        task = f"{src.label}->{dst.label}"
        desc = f"{src.label} -> {dst.label} ({compression})"

        def progress(n: int) -> None:
            bus.emit("progress", task=task, description=desc, completed=min(n, total),
                     total=total)

        t0 = time.monotonic()
        res = await pipe(src, p.source_argv, dst, p.sink_argv, on_progress=progress)
        bus.emit("progress", task=task, description=desc, completed=total, total=total,
                 done=True)
        if not res.source.ok:
            raise CommandFailed(res.source, f"docker save on {src.label} failed")
        if not res.sink.ok:
            raise CommandFailed(res.sink, f"docker load on {dst.label} failed")
        await verify(dst, images)
        seconds = time.monotonic() - t0
        bus.info(f"sent {len(images)} image(s) {src.label} -> {dst.label}: {res.bytes} bytes on "
                 f"the wire ({compression}) for {total} bytes of images in {seconds:.1f}s",
                 wire_bytes=res.bytes, image_bytes=total, compression=compression)
        return Sent(res.bytes, compression, seconds)
