"""The environment lock: held on the environment's first host while a mutating flow runs.

The lock is a directory (mkdir is atomic) holding owner.json: who, where (machine and pid),
since when and for what. The holder refreshes the file's time while it runs (a heartbeat), so a
lock whose owner died (the laptop slept, the process was killed) is told apart from a live one:
its heartbeat stops, and on the owner's own machine its pid is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from .errors import LockHeld
from .state import operator, state_dir
from .transport import CommandFailed, Host

LOCK_HELD = 75  # exit status of the acquire script when someone else holds the lock
HEARTBEAT = 15.0  # seconds between two refreshes of the owner file
STALE_AFTER = 90.0  # a lock whose owner file is older than this has lost its owner


@dataclass
class LockOwner:
    owner: str
    since: str
    command: str
    token: str
    machine: str = ""
    pid: int = 0

    @classmethod
    def mine(cls, command: str) -> LockOwner:
        return cls(operator(), datetime.now(UTC).isoformat(timespec="seconds"), command,
                   f"{os.getpid()}-{uuid.uuid4().hex[:12]}", socket.gethostname(), os.getpid())

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        try:
            d = json.loads(text)
            return cls(d["owner"], d["since"], d["command"], d.get("token", ""),
                       d.get("machine", ""), int(d.get("pid") or 0))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"{self.owner} since {self.since} ({self.command})"


@dataclass
class Held:
    """What the acquire script saw when the lock was taken by someone else."""

    owner: LockOwner | None
    age: float  # seconds since the owner's last heartbeat, on the host's clock

    @property
    def stale_reason(self) -> str | None:
        """Why the owner is gone, or None while it may still be at work."""
        if self.owner is None:
            return "its owner file is unreadable" if self.age > STALE_AFTER else None
        if (self.owner.machine == socket.gethostname() and self.owner.pid
                and not pid_alive(self.owner.pid)):
            return f"process {self.owner.pid} on {self.owner.machine} is gone"
        if self.age > STALE_AFTER:
            return f"no heartbeat for {self.age:.0f}s"
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ACQUIRE = (
    'mkdir -p "$1" || exit 1; '
    'if mkdir "$1/lock" 2>/dev/null; then printf "%s\\n" "$2" > "$1/lock/owner.json"; '
    'else f="$1/lock/owner.json"; t=$(stat -c %Y "$f" 2>/dev/null || stat -c %Y "$1/lock"); '
    'echo $(( $(date +%s) - t )); cat "$f" 2>/dev/null; exit 75; fi'
)
# Only the holder's token removes or refreshes the lock, so a late cleanup or heartbeat never
# touches someone else's lock.
_RELEASE = 'grep -qF -- "$2" "$1/lock/owner.json" 2>/dev/null && rm -rf -- "$1/lock"; exit 0'
_BEAT = 'grep -qF -- "$2" "$1/lock/owner.json" 2>/dev/null && touch "$1/lock/owner.json"'
# Breaks a stale lock only if it is still the one judged stale (same token).
_TAKE_OVER = 'grep -qF -- "$2" "$1/lock/owner.json" 2>/dev/null && rm -rf -- "$1/lock"; exit 0'


def acquire_lock(project: str, owner: LockOwner) -> list[str]:
    return ["sh", "-c", _ACQUIRE, "ferryman-lock", state_dir(project), owner.to_json()]


def release_lock(project: str, owner: LockOwner) -> list[str]:
    return ["sh", "-c", _RELEASE, "ferryman-unlock", state_dir(project), owner.token]


def heartbeat(project: str, owner: LockOwner) -> list[str]:
    return ["sh", "-c", _BEAT, "ferryman-heartbeat", state_dir(project), owner.token]


def take_over(project: str, token: str) -> list[str]:
    return ["sh", "-c", _TAKE_OVER, "ferryman-take-over", state_dir(project), token]


def break_lock(project: str) -> list[str]:
    return ["rm", "-rf", "--", f"{state_dir(project)}/lock"]


def read_lock(project: str) -> list[str]:
    return ["cat", f"{state_dir(project)}/lock/owner.json"]


def parse_held(stdout: str) -> Held:
    first, _, rest = stdout.partition("\n")
    try:
        age = float(first.strip())
    except ValueError:
        age, rest = 0.0, stdout
    return Held(LockOwner.parse(rest), age)


@dataclass
class EnvLock:
    """The lock of one environment, taken and given back by the step runner."""

    env: str
    label: str  # the environment's first host, where the lock lives
    host: Host
    project: str
    owner: LockOwner
    held: bool = False
    took_over: str = ""  # whose stale lock this one replaced
    _beat: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def acquire_argv(self) -> list[str]:
        return acquire_lock(self.project, self.owner)

    async def take(self) -> None:
        """Takes the lock, over a stale one (saying whose); a live one raises LockHeld."""
        for _ in range(2):
            res = await self.host.run(self.acquire_argv, timeout=30)
            if res.ok:
                self.held = True
                self._beat = asyncio.create_task(self._heartbeat())
                return
            if res.exit_status != LOCK_HELD:
                raise CommandFailed(res, f"cannot take the lock on {self.label}")
            held = parse_held(res.stdout)
            why = held.stale_reason
            who = held.owner.describe() if held.owner else "an unknown owner"
            if why is None:
                raise LockHeld(f"{self.env} is locked by {who}", host=self.label,
                               hint=f"wait for it to finish; if it is stale: "
                                    f"ferryman unlock {self.env}")
            await self.host.run(take_over(self.project, held.owner.token if held.owner
                                          else ""), timeout=30, check=True)
            self.took_over = f"{who}: {why}"
        raise LockHeld(f"{self.env} is locked by another run that started just now",
                       host=self.label, hint="run it again")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):
                await self.host.run(heartbeat(self.project, self.owner), timeout=30)

    async def give_back(self) -> bool:
        """False when the lock was held and its host could not be asked to free it."""
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
            self._beat = None
        freed = True
        if self.held:
            try:
                freed = (await self.host.run(release_lock(self.project, self.owner),
                                             timeout=30)).ok
            except Exception:  # the flow's own outcome is what the operator must see
                freed = False
            self.held = False
        return freed
