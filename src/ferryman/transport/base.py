"""What every transport offers: run a command, open a streaming process, close."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import FlowFailed, PreconditionFailed

# A command that names no deadline gets this one (ssh.command_timeout overrides it): a command
# that never ends must not hold a flow forever.
DEFAULT_COMMAND_TIMEOUT = 600.0


@dataclass
class Result:
    """The outcome of one command on one host."""

    host: str
    argv: list[str]
    exit_status: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    @property
    def short_command(self) -> str:
        return short_command(self.argv)


def short_command(argv: list[str]) -> str:
    """The command line with an inline shell script cut to its name: for one-line messages."""
    if len(argv) >= 4 and argv[:2] == ["sh", "-c"] and ("\n" in argv[2] or len(argv[2]) > 60):
        return shlex.join([argv[3], *argv[4:]])
    return shlex.join(argv)


class TransportError(PreconditionFailed):
    """A host could not be reached or a channel broke; says which host and why (exit 3)."""

    def __init__(self, host: str, message: str, hint: str = "") -> None:
        super().__init__(f"{host}: {message}", hint, host=host)
        self.args = (host, message, hint)


class CommandFailed(FlowFailed):
    """A command exited non-zero where success was required; carries the raw result."""

    def __init__(self, result: Result, what: str = "", hint: str = "") -> None:
        self.result = result
        head = what or f"command failed on {result.host}"
        status = "timed out" if result.timed_out else f"exit {result.exit_status}"
        super().__init__(f"{head}: {result.short_command} ({status})", hint, host=result.host)
        self.args = (result, what, hint)  # rebuilt from these when pickled


class Process(Protocol):
    """A started command whose stdin/stdout are streamed by the caller.

    read, write and wait give up after the stream's idle deadline: the process is then
    aborted (killed, its channel closed) and TransportError says so.
    """

    async def read(self, n: int) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def abort(self) -> None: ...
    async def wait(self) -> Result: ...


class Host(Protocol):
    label: str

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: bytes | None = None,
        check: bool = False,
    ) -> Result: ...

    async def open(self, argv: Sequence[str], *, idle_timeout: float | None = None
                   ) -> Process:
        """idle_timeout: longest wait for one read, write or the exit (None: the host's
        command timeout; math.inf: none, for a stream that may rightly stay quiet)."""
        ...

    async def close(self) -> None: ...


@dataclass
class StderrTail:
    """Keeps the last bytes of a stream so a chatty command cannot exhaust memory."""

    limit: int = 64 * 1024
    chunks: bytearray = field(default_factory=bytearray)

    def add(self, data: bytes) -> None:
        self.chunks.extend(data)
        if len(self.chunks) > self.limit:
            del self.chunks[: len(self.chunks) - self.limit]

    def text(self) -> str:
        return self.chunks.decode("utf-8", "replace")


def decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", "replace")
