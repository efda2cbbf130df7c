"""Stream one host's command output into another host's command, through this process.

Bytes pass through memory in chunks and never touch local disk (the `scp -3` way): the
operator's machine only relays. A failure on either side aborts the other, so the receiver
never mistakes a cut stream for a complete one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .base import Host, Process, Result, TransportError

CHUNK = 256 * 1024


@dataclass
class PipeResult:
    source: Result
    sinks: list[Result]
    bytes: int

    @property
    def sink(self) -> Result:
        return self.sinks[0]

    @property
    def ok(self) -> bool:
        return self.source.ok and all(s.ok for s in self.sinks)


async def pipe(
    src: Host,
    src_argv: Sequence[str],
    dst: Host,
    dst_argv: Sequence[str],
    *,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> PipeResult:
    """Runs src_argv on src and dst_argv on dst with src's stdout fed to dst's stdin."""
    return await pipe_many(src, src_argv, [(dst, dst_argv)], on_progress=on_progress,
                           chunk=chunk)


async def pipe_many(
    src: Host,
    src_argv: Sequence[str],
    sinks: Sequence[tuple[Host, Sequence[str]]],
    *,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> PipeResult:
    """src's stdout fed to every sink's stdin at once: the source is read once, each chunk
    written to all receivers (the slowest sets the pace)."""
    source = await src.open(src_argv)
    opened: list[Process] = []
    try:
        for host, argv in sinks:
            opened.append(await host.open(argv))
    except BaseException:
        await source.abort()
        for proc in opened:
            await proc.abort()
        raise
    sent = 0
    try:
        while data := await source.read(chunk):
            await asyncio.gather(*(proc.write(data) for proc in opened))
            sent += len(data)
            if on_progress is not None:
                on_progress(sent)
        src_result = await source.wait()
        if not src_result.ok:
            for proc in opened:
                await proc.abort()
            return PipeResult(src_result, [await _finish(proc) for proc in opened], sent)
        for proc in opened:
            await proc.close_stdin()
        return PipeResult(src_result, list(await asyncio.gather(*(p.wait() for p in opened))),
                          sent)
    except (TransportError, asyncio.CancelledError):
        await source.abort()
        for proc in opened:
            await proc.abort()
        raise


async def _finish(proc: Process) -> Result:
    try:
        return await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError as exc:
        raise TransportError("pipe", "receiver did not stop after its input was cut") from exc
