"""The operator's own machine as a host: commands run as local subprocesses.

Each command runs in its own process group, so a deadline kills what it started too (a shell's
children would otherwise hold its pipes open and the wait for them would never end).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import Sequence

from .base import (
    DEFAULT_COMMAND_TIMEOUT,
    CommandFailed,
    Result,
    StderrTail,
    TransportError,
    decode,
    short_command,
)

# After a kill: how long the pipes may take to report their end.
KILL_GRACE = 10.0


async def _pump(stream: asyncio.StreamReader | None, into: bytearray) -> None:
    """Keeps what a command printed as it comes, so a deadline still shows the output."""
    if stream is not None:
        while chunk := await stream.read(65536):
            into.extend(chunk)


async def _feed(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LocalProcess:
    def __init__(self, label: str, argv: list[str], proc: asyncio.subprocess.Process,
                 idle: float | None) -> None:
        self._label, self._argv, self._proc, self._idle = label, argv, proc, idle
        self._started = time.monotonic()
        self._stderr = StderrTail()
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._aborted = False

    async def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(65536):
            self._stderr.add(chunk)

    async def _stalled(self, what: str) -> TransportError:
        await self.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_GRACE):
                await self._proc.wait()
        return TransportError(self._label, f"{short_command(self._argv)} {what} for "
                              f"{self._idle:g}s: stopped it")

    async def read(self, n: int) -> bytes:
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(self._idle):
                return await self._proc.stdout.read(n)
        except TimeoutError:
            raise await self._stalled("sent nothing") from None

    async def write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            async with asyncio.timeout(self._idle):
                self._proc.stdin.write(data)
                await self._proc.stdin.drain()
        except TimeoutError:
            raise await self._stalled("took no input") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise TransportError(self._label, f"stdin of {self._argv[0]} closed: {exc}") from exc

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                async with asyncio.timeout(self._idle):
                    await self._proc.stdin.wait_closed()

    async def abort(self) -> None:
        self._aborted = True
        _kill_group(self._proc)
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    async def wait(self) -> Result:
        rest = b""
        timed_out = False
        bound = KILL_GRACE if self._aborted else self._idle
        try:
            async with asyncio.timeout(bound):
                if self._proc.stdout is not None:
                    rest = await self._proc.stdout.read()
                await self._proc.wait()
                await self._stderr_task
        except TimeoutError:
            if not self._aborted:
                raise await self._stalled("did not end") from None
            timed_out = True
        status = self._proc.returncode
        return Result(
            self._label, self._argv, status if status is not None else -1, decode(rest),
            self._stderr.text(), time.monotonic() - self._started, timed_out,
        )


class LocalHost:
    """Runs argv lists directly (no shell), so odd names need no quoting."""

    def __init__(self, label: str = "local", command_timeout: float | None = None) -> None:
        self.label = label
        self.command_timeout = command_timeout or DEFAULT_COMMAND_TIMEOUT

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: bytes | None = None,
        check: bool = False,
    ) -> Result:
        argv = list(argv)
        deadline = self.command_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            result = Result(self.label, argv, 127, "", f"{argv[0]}: command not found")
            if check:
                raise CommandFailed(result) from None
            return result
        out, err = bytearray(), bytearray()
        pumps = [asyncio.create_task(_pump(proc.stdout, out)),
                 asyncio.create_task(_pump(proc.stderr, err))]
        timed_out = False
        try:
            async with asyncio.timeout(deadline):
                await _feed(proc, input)
                await asyncio.wait(pumps)  # unlike gather, leaves them running on timeout
                await proc.wait()
        except TimeoutError:
            timed_out = True
            _kill_group(proc)
            # A child that left the group may still hold the pipes: bounded too.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_GRACE):
                    await asyncio.wait(pumps)
                    await proc.wait()
        finally:
            for task in pumps:
                task.cancel()
        result = Result(
            self.label, argv, proc.returncode if proc.returncode is not None else -1,
            decode(bytes(out)), decode(bytes(err)), time.monotonic() - started, timed_out,
        )
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def open(self, argv: Sequence[str], *, idle_timeout: float | None = None
                   ) -> LocalProcess:
        argv = list(argv)
        idle = self.command_timeout if idle_timeout is None else idle_timeout
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise TransportError(self.label, f"{argv[0]}: command not found") from exc
        return LocalProcess(self.label, argv, proc, None if math.isinf(idle) else idle)

    async def close(self) -> None:
        return None
