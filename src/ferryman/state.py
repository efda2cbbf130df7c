"""What ferryman keeps on the servers, so every operator sees the same lock and history.

Layout under /var/lib/ferryman/PROJECT/ on each host:
  lock/owner.json     the environment lock (a directory: mkdir is atomic)
  releases.jsonl      one JSON line per release or rollback, newest last
  compose/            override files that pin a compose service's image
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ROOT = "/var/lib/ferryman"
LOCK_HELD = 75  # exit status of the acquire script when someone else holds the lock


def state_dir(project: str) -> str:
    return f"{ROOT}/{project}"


def release_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("r%Y%m%d-%H%M%S")


def operator() -> str:
    try:
        user = getpass.getuser()
    except OSError:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class LockOwner:
    owner: str
    since: str
    command: str
    token: str

    @classmethod
    def mine(cls, command: str) -> LockOwner:
        return cls(operator(), datetime.now(UTC).isoformat(timespec="seconds"), command,
                   f"{os.getpid()}-{uuid.uuid4().hex[:12]}")

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False)

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        try:
            d = json.loads(text)
            return cls(d["owner"], d["since"], d["command"], d.get("token", ""))
        except (ValueError, KeyError, TypeError):
            return None


_ACQUIRE = (
    'mkdir -p "$1" || exit 1; '
    'if mkdir "$1/lock" 2>/dev/null; then printf "%s\\n" "$2" > "$1/lock/owner.json"; '
    'else cat "$1/lock/owner.json" 2>/dev/null; exit 75; fi'
)
# Only the holder's token removes the lock, so a late cleanup never frees someone else's lock.
_RELEASE = 'grep -qF -- "$2" "$1/lock/owner.json" 2>/dev/null && rm -rf -- "$1/lock"; exit 0'
_APPEND = 'mkdir -p "$1" && printf "%s\\n" "$2" >> "$1/releases.jsonl"'
_WRITE = 'mkdir -p "$(dirname "$1")" && cat > "$1"'


def acquire_lock(project: str, owner: LockOwner) -> list[str]:
    return ["sh", "-c", _ACQUIRE, "ferryman-lock", state_dir(project), owner.to_json()]


def release_lock(project: str, owner: LockOwner) -> list[str]:
    return ["sh", "-c", _RELEASE, "ferryman-unlock", state_dir(project), owner.token]


def break_lock(project: str) -> list[str]:
    return ["rm", "-rf", "--", f"{state_dir(project)}/lock"]


def read_lock(project: str) -> list[str]:
    return ["cat", f"{state_dir(project)}/lock/owner.json"]


def append_record(project: str, record: dict[str, Any]) -> list[str]:
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return ["sh", "-c", _APPEND, "ferryman-record", state_dir(project), line]


def read_records(project: str, last: int = 200) -> list[str]:
    return ["tail", "-n", str(last), f"{state_dir(project)}/releases.jsonl"]


def parse_records(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line from a crash must not hide the others
    return out


def write_file(path: str) -> list[str]:
    """argv that writes its stdin to path on the host (creating folders)."""
    return ["sh", "-c", _WRITE, "ferryman-write", path]


def compose_override_path(project: str, compose_project: str, service: str) -> str:
    return f"{state_dir(project)}/compose/{compose_project}-{service}.override.yml"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def monotonic() -> float:
    return time.monotonic()
