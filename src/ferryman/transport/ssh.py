"""SSH hosts over asyncssh: one connection per host, reused by every command of a run.

~/.ssh/config, the agent and ~/.ssh/known_hosts are honoured because asyncssh loads them when
an option is left unset; we only pass what ferryman.yml sets explicitly.

Nothing waits forever: every command has a deadline, every stream an idle deadline, and
keepalives notice a peer that went silent (a TCP connection to a host that vanished can
otherwise wait a quarter of an hour, and a channel open on it never returns). A command that
outlives its deadline is killed over a second channel; when that channel cannot be opened
either, the connection is dead: it is closed, so every other command on it ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from . import connect_errors as ce
from .base import (
    DEFAULT_COMMAND_TIMEOUT,
    CommandFailed,
    Result,
    StderrTail,
    TransportError,
    decode,
    short_command,
)

T = TypeVar("T")

# OpenSSH's sshd allows 10 sessions per connection by default (MaxSessions), and a closed
# session is freed a little after its exit status arrives: stay well below, retry when refused.
MAX_CHANNELS = 6
OPEN_RETRIES = 5
# After a deadline: how long the kill (and with it, proof that the host still answers) may take.
KILL_GRACE = 10.0
# How long a clean close may wait for a peer to acknowledge before the socket is dropped.
CLOSE_GRACE = 5.0

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
    keepalive_interval: float = 15.0  # 0: none
    keepalive_count_max: int = 3
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
    """Appends the key; a file (and folder) made here is the owner's alone, as ssh makes it."""
    path = _known_hosts_path(target)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{_host_pattern(target)} {decode(key.export_public_key('openssh')).strip()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)


class _Watch(asyncssh.SSHClient):
    """Remembers why its connection closed (keepalive unanswered, reset...) for the message
    of every command the close cut short."""

    def __init__(self) -> None:
        self.lost: Exception | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


# asyncssh forgets a connection's owner once it closes: keep it to ask why.
_WATCHES: weakref.WeakKeyDictionary[asyncssh.SSHClientConnection, _Watch] = (
    weakref.WeakKeyDictionary())


def _why_closed(conn: asyncssh.SSHClientConnection) -> str:
    watch = _WATCHES.get(conn)
    lost = watch.lost if watch is not None else None
    return str(lost) if lost else "connection closed"


def _attempt(target: SshTarget) -> ce.Attempt:
    return ce.Attempt(
        where=target.display, hostname=target.hostname, port=target.port or 22,
        connect_timeout=target.connect_timeout,
        known_hosts=_known_hosts_path(target) if target.known_hosts else None,
        identity_file=Path(target.identity_file).expanduser() if target.identity_file else None,
    )


# AES-GCM first, asyncssh's defaults after: OpenSSL runs it on the CPU's AES instructions,
# where asyncssh's first choice, chacha20-poly1305, made an image transfer ~15% slower than
# OpenSSH's client (bench/release.py). A `Ciphers` line in ~/.ssh/config is left to decide.
PREFERRED_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"


def _ciphers_configured() -> bool:
    try:
        text = (Path.home() / ".ssh" / "config").read_text(errors="replace")
    except OSError:
        return False
    return any(line.strip().lower().startswith("ciphers") for line in text.splitlines())


async def _connect(target: SshTarget, known_hosts: Any = ()) -> asyncssh.SSHClientConnection:
    tunnel: Any = ()
    if target.jump is not None:
        tunnel = await open_connection(target.jump)
    kwargs: dict[str, Any] = {
        "connect_timeout": target.connect_timeout,
        "keepalive_interval": target.keepalive_interval,
        "keepalive_count_max": target.keepalive_count_max,
        "client_factory": _Watch,
    }
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
    if not _ciphers_configured():
        kwargs["encryption_algs"] = PREFERRED_CIPHERS
    conn = await asyncssh.connect(target.hostname, **kwargs)
    owner = conn.get_owner()
    if isinstance(owner, _Watch):
        _WATCHES[conn] = owner
    return conn


async def _learn(target: SshTarget) -> asyncssh.SSHClientConnection:
    """First contact: connect without a known key and record the one the host shows."""
    conn = await _connect(target, known_hosts=None)
    key = conn.get_server_host_key()
    if key is not None:
        _record_host_key(target, key)
    return conn


def _fail(target: SshTarget, failure: ce.ConnectFailure) -> TransportError:
    return TransportError(target.label, failure.message, failure.hint)


async def open_connection(target: SshTarget) -> asyncssh.SSHClientConnection:
    """Connects with host-key verification; learns an unknown key only when allowed."""
    where = target.display
    attempt = _attempt(target)
    if attempt.identity_file is not None and not attempt.identity_file.exists():
        raise _fail(target, ce.missing_identity(attempt))
    first_contact = attempt.known_hosts is not None and not attempt.known_hosts.exists()
    if first_contact and not target.accept_unknown_host_key:
        raise _fail(target, ce.missing_known_hosts(attempt))
    try:
        if first_contact:
            return await _learn(target)
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
            return await _learn(target)
    except TransportError:
        raise
    except (OSError, asyncssh.Error, ValueError) as exc:
        # ValueError: asyncssh's key import errors (a passphrase, not a key file...).
        raise _fail(target, ce.describe(attempt, exc)) from exc


# A command first reports its PID on stderr, so that one that outlives its deadline (or an
# aborted stream) can be killed over a second channel: a closed channel looks like a clean end
# of input to the far command, and sshd does not honour signal requests for every user (root
# included). sshd starts each session as its own process group, so the kill takes the whole
# group (a pipeline's other members too) and falls back to the one process.
PID_MARK = b"ferryman-pid:"
_WITH_PID = 'printf "ferryman-pid:%s\\n" "$$" >&2; exec "$@"'
_KILL = 'kill -KILL "-$1" 2>/dev/null || kill -KILL "$1"'  # dash's kill takes no "--"


def with_pid(argv: list[str], name: str = "ferryman-run") -> list[str]:
    return ["sh", "-c", _WITH_PID, name, *argv]


def kill_argv(pid: str) -> list[str]:
    return ["sh", "-c", _KILL, "ferryman-kill", pid]


def split_pid(stderr: bytes) -> tuple[str | None, bytes]:
    """(PID, the rest of stderr) from what a command wrapped by with_pid printed."""
    if not stderr.startswith(PID_MARK):
        return None, stderr
    line, _, rest = stderr.partition(b"\n")
    pid = line[len(PID_MARK):].strip().decode("ascii", "replace")
    return (pid if pid.isdigit() else None), rest


def _idle(value: float | None, default: float) -> float | None:
    """Seconds for asyncio.timeout: the default when unset, None for math.inf."""
    if value is None:
        return default
    return None if math.isinf(value) else value


LOST_HINT = ("is the host up and the network to it working? Nothing more was run there after "
             "this point")


class SshProcess:
    def __init__(self, host: SshHost, conn: asyncssh.SSHClientConnection, argv: list[str],
                 proc: asyncssh.SSHClientProcess, idle: float | None) -> None:
        self._host, self._conn, self._label = host, conn, host.label
        self._argv, self._proc, self._idle = argv, proc, idle
        self._started = time.monotonic()
        self._stderr = StderrTail()
        self._pid: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._aborted = False

    async def _drain_stderr(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            first = await self._proc.stderr.readline()
            pid, rest = split_pid(first)
            if pid is not None:
                self._pid.set_result(pid)
            self._stderr.add(rest)
            while chunk := await self._proc.stderr.read(65536):
                self._stderr.add(chunk)

    async def _stalled(self, what: str) -> TransportError:
        """The idle deadline passed: kill and close, then say whether the host still answers."""
        short = short_command(self._argv)
        alive = await self._host._stop(self._conn, self._proc, await self._wait_pid())
        self._aborted = True
        if not alive:
            return self._host._lost(self._conn, f"while streaming {short} (no answer for "
                                    f"{self._idle:g}s)")
        return TransportError(self._label, f"{short} {what} for {self._idle:g}s: stopped it",
                              "the command hangs on the host; see what it waits for there")

    async def _wait_pid(self) -> str | None:
        # The PID line comes first thing; it may still be in flight when an abort comes early.
        if self._pid.cancelled():
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._pid), min(5.0, KILL_GRACE))
        return None

    async def read(self, n: int) -> bytes:
        try:
            async with asyncio.timeout(self._idle):
                return await self._proc.stdout.read(n)
        except TimeoutError:
            raise await self._stalled("sent nothing") from None
        except (asyncssh.Error, OSError) as exc:
            doing = f"while reading from {short_command(self._argv)}"
            raise self._host._broken(self._conn, doing, exc) from exc

    async def write(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(self._idle):
                self._proc.stdin.write(data)
                await self._proc.stdin.drain()
        except TimeoutError:
            raise await self._stalled("took no input") from None
        except (asyncssh.Error, OSError, BrokenPipeError) as exc:
            if self._conn.is_closed():
                doing = f"while writing to {short_command(self._argv)}"
                raise self._host._lost(self._conn, doing, exc) from exc
            raise TransportError(self._label, f"stream into {self._argv[0]} broke: {exc}"
                                 ) from exc

    async def close_stdin(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._proc.stdin.write_eof()

    async def abort(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        await self._host._stop(self._conn, self._proc, await self._wait_pid())

    async def wait(self) -> Result:
        rest = b""
        timed_out = False
        status: int | None = -1
        # Once aborted, the channel is closed or closing: no reason to wait long for it.
        bound = KILL_GRACE if self._aborted else self._idle
        try:
            async with asyncio.timeout(bound):
                with contextlib.suppress(asyncssh.Error, OSError):
                    rest = await self._proc.stdout.read()
                with contextlib.suppress(asyncssh.Error, OSError):
                    status = (await self._proc.wait()).exit_status
                await self._stderr_task
        except TimeoutError:
            if not self._aborted:
                raise await self._stalled("did not end") from None
            timed_out = True
        if not self._pid.done():
            self._pid.cancel()
        if status is None and not self._aborted:
            if self._conn.is_closed():
                raise self._host._lost(self._conn, f"while {short_command(self._argv)} ran")
            status = -1
        return Result(
            self._label, self._argv, -1 if status is None else status, decode(rest),
            self._stderr.text(), time.monotonic() - self._started, timed_out,
        )


class SshHost:
    """A server reached over SSH; the connection opens on first use and is then shared."""

    def __init__(self, target: SshTarget, command_timeout: float | None = None) -> None:
        self.target = target
        self.label = target.label
        self.command_timeout = command_timeout or DEFAULT_COMMAND_TIMEOUT
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._channels = asyncio.Semaphore(MAX_CHANNELS)

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and self._conn.is_closed():
                self._conn = None  # lost: the next command tries once more
            if self._conn is None:
                self._conn = await open_connection(self.target)
            return self._conn

    def _lost(self, conn: asyncssh.SSHClientConnection, doing: str,
              exc: BaseException | None = None) -> TransportError:
        """The connection is gone (or no longer answers): drop it, so every other command
        waiting on it ends now instead of at its own deadline."""
        reason = _why_closed(conn) if conn.is_closed() or exc is None else str(exc)
        self._drop(conn)
        return TransportError(self.label, f"connection lost {doing} ({self.target.display}: "
                              f"{reason})", LOST_HINT)

    def _broken(self, conn: asyncssh.SSHClientConnection, doing: str,
                exc: BaseException) -> TransportError:
        """An error from asyncssh: the connection's end, or a refusal on a live one."""
        if conn.is_closed():
            return self._lost(conn, doing, exc)
        if isinstance(exc, asyncssh.ChannelOpenError):
            return TransportError(self.label, f"{self.target.display} refused a channel {doing}: "
                                  f"{exc.reason}", "sshd limits sessions per connection "
                                  "(MaxSessions); is something else holding many?")
        return TransportError(self.label, f"SSH error {doing}: {exc}")

    def _drop(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._conn is conn:
            self._conn = None
        if not conn.is_closed():
            watch = _WATCHES.get(conn)
            if watch is not None and watch.lost is None:
                watch.lost = ConnectionError("no answer from the host")
            conn.abort()

    async def _stop(self, conn: asyncssh.SSHClientConnection,
                    proc: asyncssh.SSHClientProcess | None, pid: str | None) -> bool:
        """Kills a command that overran (by PID, over a new channel) and closes its channel.
        True when the host answered; False when it did not within KILL_GRACE (the connection
        is then dropped). The kill comes first: closing the channel is a clean end of input
        to the far command, which a receiver would take for a complete stream."""
        try:
            return await self._kill(conn, pid)
        finally:
            if proc is not None:
                with contextlib.suppress(asyncssh.Error, OSError):
                    proc.close()

    async def _kill(self, conn: asyncssh.SSHClientConnection, pid: str | None) -> bool:
        if conn.is_closed():
            return False
        try:
            async with asyncio.timeout(KILL_GRACE):
                # Without a PID, `true` still proves the host answers.
                argv = kill_argv(pid) if pid else ["true"]
                await self._with_retry(conn, lambda: conn.run(shlex.join(argv), check=False))
        except asyncssh.ChannelOpenError:
            alive = not conn.is_closed()  # refused (too many sessions) is an answer too
        except (TimeoutError, asyncssh.Error, OSError):
            alive = False
        else:
            alive = True
        if not alive:
            self._drop(conn)
        return alive

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
        conn = await self.connection()
        async with self._channels:
            result = await self._run(conn, argv, deadline, input)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def _run(self, conn: asyncssh.SSHClientConnection, argv: list[str], deadline: float,
                   input: bytes | None) -> Result:
        started = time.monotonic()
        short = short_command(argv)
        proc: asyncssh.SSHClientProcess | None = None
        try:
            async with asyncio.timeout(deadline):
                proc = await self._with_retry(conn, lambda: conn.create_process(
                    shlex.join(with_pid(argv)), input=input, encoding=None))
                done = await proc.wait()
        except TimeoutError:
            out, err = proc.collect_output() if proc is not None else (b"", b"")
            pid, err = split_pid(err)
            if not await self._stop(conn, proc, pid):
                raise self._lost(conn, f"while running {short} (no answer for {deadline:g}s)"
                                 ) from None
            return Result(self.label, argv, -1, decode(out), decode(err),
                          time.monotonic() - started, timed_out=True)
        except (asyncssh.Error, OSError) as exc:
            raise self._broken(conn, f"while running {short}", exc) from exc
        _, err = split_pid(done.stderr or b"")
        if done.exit_status is None and conn.is_closed():
            raise self._lost(conn, f"while running {short}")
        return Result(
            self.label, argv, done.exit_status if done.exit_status is not None else -1,
            decode(done.stdout), decode(err), time.monotonic() - started,
        )

    async def open(self, argv: Sequence[str], *, idle_timeout: float | None = None
                   ) -> SshProcess:
        argv = list(argv)
        idle = _idle(idle_timeout, self.command_timeout)
        conn = await self.connection()
        try:
            async with asyncio.timeout(idle):
                proc = await self._with_retry(conn, lambda: conn.create_process(
                    shlex.join(with_pid(argv, "ferryman-stream")), encoding=None))
        except TimeoutError:
            if not await self._stop(conn, None, None):
                raise self._lost(conn, f"while starting {argv[0]}") from None
            raise TransportError(self.label, f"cannot start {argv[0]}: no channel within "
                                 f"{idle:g}s") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._broken(conn, f"while starting {argv[0]}", exc) from exc
        return SshProcess(self, conn, argv, proc, idle)

    @staticmethod
    async def _with_retry(conn: asyncssh.SSHClientConnection,
                          start: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(OPEN_RETRIES):
            try:
                return await start()
            except asyncssh.ChannelOpenError:
                if attempt == OPEN_RETRIES - 1 or conn.is_closed():
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        try:
            # A peer that vanished never acknowledges: drop the socket after a grace.
            await asyncio.wait_for(conn.wait_closed(), CLOSE_GRACE)
        except (TimeoutError, asyncssh.Error, OSError):
            conn.abort()
