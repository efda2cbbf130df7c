"""SSH hosts over asyncssh: one connection per host, reused by every command of a run.

~/.ssh/config, the agent and ~/.ssh/known_hosts are honoured because asyncssh loads them when
an option is left unset; we only pass what ferryman.yml sets explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from .base import CommandFailed, Result, StderrTail, TransportError, decode

T = TypeVar("T")

# OpenSSH's sshd allows 10 sessions per connection by default (MaxSessions), and a closed
# session is freed a little after its exit status arrives: stay well below, retry when refused.
MAX_CHANNELS = 6
OPEN_RETRIES = 5


@dataclass
class SshTarget:
    label: str
    hostname: str
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    password: str | None = None
    known_hosts: str | None = None
    accept_unknown_host_key: bool = False
    connect_timeout: float = 10.0
    jump: SshTarget | None = None

    @property
    def display(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.hostname}{port}"


def _known_hosts_path(target: SshTarget) -> Path:
    return Path(target.known_hosts or "~/.ssh/known_hosts").expanduser()


def _host_pattern(target: SshTarget) -> str:
    if target.port and target.port != 22:
        return f"[{target.hostname}]:{target.port}"
    return target.hostname


def _listed_keys(target: SshTarget) -> int:
    """How many keys known_hosts holds for this host: >0 means a changed key, not a new one."""
    path = _known_hosts_path(target)
    if not path.exists():
        return 0
    try:
        known = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError):
        return 0
    trusted, cas, revoked, *_ = asyncssh.match_known_hosts(
        known, target.hostname, "", target.port or 22
    )
    return len(trusted) + len(cas) + len(revoked)


def _record_host_key(target: SshTarget, key: asyncssh.SSHKey) -> None:
    path = _known_hosts_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{_host_pattern(target)} {decode(key.export_public_key('openssh')).strip()}\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


async def _connect(target: SshTarget, known_hosts: Any = ()) -> asyncssh.SSHClientConnection:
    tunnel: Any = ()
    if target.jump is not None:
        tunnel = await open_connection(target.jump)
    kwargs: dict[str, Any] = {"connect_timeout": target.connect_timeout}
    if target.port:
        kwargs["port"] = target.port
    if target.user:
        kwargs["username"] = target.user
    if target.identity_file:
        kwargs["client_keys"] = [str(Path(target.identity_file).expanduser())]
    if target.password:
        kwargs["password"] = target.password
    if known_hosts != ():
        kwargs["known_hosts"] = known_hosts
    elif target.known_hosts:
        kwargs["known_hosts"] = str(_known_hosts_path(target))
    if tunnel != ():
        kwargs["tunnel"] = tunnel
    return await asyncssh.connect(target.hostname, **kwargs)


async def open_connection(target: SshTarget) -> asyncssh.SSHClientConnection:
    """Connects with host-key verification; learns an unknown key only when allowed."""
    where = target.display
    try:
        try:
            return await _connect(target)
        except asyncssh.HostKeyNotVerifiable as exc:
            if not target.accept_unknown_host_key:
                raise TransportError(
                    target.label,
                    f"host key of {where} is not in {_known_hosts_path(target)} ({exc.reason})",
                    "check the key (ssh-keyscan) and add it, or set accept_unknown_host_key: true "
                    "for this host to record it on first use",
                ) from exc
            if _listed_keys(target):
                raise TransportError(
                    target.label,
                    f"host key of {where} CHANGED: known_hosts lists another key",
                    "if the server was reinstalled, remove its old line from known_hosts; "
                    "otherwise this may be an attack: do not connect",
                ) from exc
            conn = await _connect(target, known_hosts=None)
            key = conn.get_server_host_key()
            if key is not None:
                _record_host_key(target, key)
            return conn
    except TransportError:
        raise
    except asyncssh.PermissionDenied as exc:
        raise TransportError(
            target.label, f"SSH login refused for {where}: {exc.reason}",
            "check the user, identity_file and that the key is in authorized_keys",
        ) from exc
    except TimeoutError as exc:
        raise TransportError(
            target.label, f"SSH connection to {where} timed out after {target.connect_timeout:g}s",
            "is the host up and the port open?",
        ) from exc
    except (OSError, asyncssh.Error) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise TransportError(
            target.label, f"cannot connect to {where}: {reason}",
            "is sshd running there and the address right?",
        ) from exc


# A streamed command first reports its PID on stderr, so that an abort can kill it over a
# second channel: a closed channel looks like a clean end of input to the far command, and
# sshd does not honour signal requests for every user (root included).
PID_MARK = b"ferryman-pid:"
_WITH_PID = 'printf "ferryman-pid:%s\\n" "$$" >&2; exec "$@"'


class SshProcess:
    def __init__(self, host: SshHost, argv: list[str], proc: asyncssh.SSHClientProcess) -> None:
        self._host, self._label, self._argv, self._proc = host, host.label, argv, proc
        self._started = time.monotonic()
        self._stderr = StderrTail()
        self._pid: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            first = await self._proc.stderr.readline()
            if first.startswith(PID_MARK):
                self._pid.set_result(first[len(PID_MARK):].strip().decode())
            else:
                self._stderr.add(first)
            while chunk := await self._proc.stderr.read(65536):
                self._stderr.add(chunk)

    async def read(self, n: int) -> bytes:
        try:
            return await self._proc.stdout.read(n)
        except (asyncssh.Error, OSError) as exc:
            raise TransportError(self._label, f"stream from {self._argv[0]} broke: {exc}") from exc

    async def write(self, data: bytes) -> None:
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (asyncssh.Error, OSError, BrokenPipeError) as exc:
            raise TransportError(self._label, f"stream into {self._argv[0]} broke: {exc}") from exc

    async def close_stdin(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._proc.stdin.write_eof()

    async def abort(self) -> None:
        # The PID line comes first thing; it may still be in flight when an abort comes early.
        with contextlib.suppress(TimeoutError):
            pid = await asyncio.wait_for(asyncio.shield(self._pid), 5)
            if pid.isdigit():
                with contextlib.suppress(TransportError):
                    await self._host.run(["kill", "-KILL", pid], timeout=15)
        with contextlib.suppress(asyncssh.Error, OSError):
            self._proc.close()

    async def wait(self) -> Result:
        rest = b""
        with contextlib.suppress(asyncssh.Error, OSError):
            rest = await self._proc.stdout.read()
        try:
            completed = await self._proc.wait()
            status = completed.exit_status if completed.exit_status is not None else -1
        except (asyncssh.Error, OSError):
            status = -1
        await self._stderr_task
        if not self._pid.done():
            self._pid.cancel()
        return Result(
            self._label, self._argv, status, decode(rest), self._stderr.text(),
            time.monotonic() - self._started,
        )


class SshHost:
    """A server reached over SSH; the connection opens on first use and is then shared."""

    def __init__(self, target: SshTarget, command_timeout: float | None = None) -> None:
        self.target = target
        self.label = target.label
        self.command_timeout = command_timeout
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._channels = asyncio.Semaphore(MAX_CHANNELS)

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is None:
                self._conn = await open_connection(self.target)
            return self._conn

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: bytes | None = None,
        check: bool = False,
    ) -> Result:
        argv = list(argv)
        conn = await self.connection()
        timeout = timeout if timeout is not None else self.command_timeout
        started = time.monotonic()
        async with self._channels:
            try:
                done = await self._with_retry(lambda: conn.run(
                    shlex.join(argv), check=False, timeout=timeout, input=input, encoding=None
                ))
                result = Result(
                    self.label, argv,
                    done.exit_status if done.exit_status is not None else -1,
                    decode(done.stdout), decode(done.stderr), time.monotonic() - started,
                )
            except asyncssh.TimeoutError as exc:
                result = Result(
                    self.label, argv, -1, decode(exc.stdout), decode(exc.stderr),
                    time.monotonic() - started, timed_out=True,
                )
            except (asyncssh.Error, OSError) as exc:
                self._conn = None
                raise TransportError(
                    self.label, f"connection lost while running {argv[0]}: {exc}"
                ) from exc
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def open(self, argv: Sequence[str]) -> SshProcess:
        argv = list(argv)
        conn = await self.connection()
        try:
            wrapped = ["sh", "-c", _WITH_PID, "ferryman-stream", *argv]
            proc = await self._with_retry(
                lambda: conn.create_process(shlex.join(wrapped), encoding=None)
            )
        except (asyncssh.Error, OSError) as exc:
            raise TransportError(self.label, f"cannot start {argv[0]}: {exc}") from exc
        return SshProcess(self, argv, proc)

    @staticmethod
    async def _with_retry(start: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(OPEN_RETRIES):
            try:
                return await start()
            except asyncssh.ChannelOpenError:
                if attempt == OPEN_RETRIES - 1:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
            self._conn = None
