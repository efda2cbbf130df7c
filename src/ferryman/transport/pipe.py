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
    sink: Result
    bytes: int

    @property
    def ok(self) -> bool:
        return self.source.ok and self.sink.ok


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
    source = await src.open(src_argv)
    try:
        sink = await dst.open(dst_argv)
    except BaseException:
        await source.abort()
        raise
    sent = 0
    try:
        while data := await source.read(chunk):
            await sink.write(data)
            sent += len(data)
            if on_progress is not None:
                on_progress(sent)
        src_result = await source.wait()
        if not src_result.ok:
            await sink.abort()
            return PipeResult(src_result, await _finish(sink), sent)
        await sink.close_stdin()
        return PipeResult(src_result, await sink.wait(), sent)
    except (TransportError, asyncio.CancelledError):
        await source.abort()
        await sink.abort()
        raise


async def _finish(proc: Process) -> Result:
    try:
        return await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError as exc:
        raise TransportError("pipe", "receiver did not stop after its input was cut") from exc
