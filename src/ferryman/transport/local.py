"""The operator's own machine as a host: commands run as local subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence

from .base import CommandFailed, Result, StderrTail, TransportError, decode


class LocalProcess:
    def __init__(self, label: str, argv: list[str], proc: asyncio.subprocess.Process) -> None:
        self._label, self._argv, self._proc = label, argv, proc
        self._started = time.monotonic()
        self._stderr = StderrTail()
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(65536):
            self._stderr.add(chunk)

    async def read(self, n: int) -> bytes:
        assert self._proc.stdout is not None
        return await self._proc.stdout.read(n)

    async def write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise TransportError(self._label, f"stdin of {self._argv[0]} closed: {exc}") from exc

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._proc.stdin.wait_closed()

    async def abort(self) -> None:
        # The whole group: a shell's children would otherwise hold the pipes open.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    async def wait(self) -> Result:
        rest = b""
        if self._proc.stdout is not None:
            rest = await self._proc.stdout.read()
        status = await self._proc.wait()
        await self._stderr_task
        return Result(
            self._label, self._argv, status, decode(rest), self._stderr.text(),
            time.monotonic() - self._started,
        )


class LocalHost:
    """Runs argv lists directly (no shell), so odd names need no quoting."""

    def __init__(self, label: str = "local") -> None:
        self.label = label

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: bytes | None = None,
        check: bool = False,
    ) -> Result:
        argv = list(argv)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            result = Result(self.label, argv, 127, "", f"{argv[0]}: command not found")
            if check:
                raise CommandFailed(result) from None
            return result
        timed_out = False
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            timed_out = True
        result = Result(
            self.label, argv, proc.returncode if proc.returncode is not None else -1,
            decode(out), decode(err), time.monotonic() - started, timed_out,
        )
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def open(self, argv: Sequence[str]) -> LocalProcess:
        argv = list(argv)
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
        return LocalProcess(self.label, argv, proc)

    async def close(self) -> None:
        return None
