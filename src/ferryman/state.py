"""What ferryman keeps on the servers, so every operator sees the same lock and history.

Layout under /var/lib/ferryman/PROJECT/ on each host:
  lock/owner.json     the environment lock (a directory: mkdir is atomic; see locking.py)
  journal.json        the flow in progress: the step reached and what its undo needs
  releases.jsonl      one JSON line per release or rollback, newest last
  audit.jsonl         one JSON line per action taken from the dashboard: who, what, result
  compose/            override files that pin a compose service's image
"""

from __future__ import annotations

import contextvars
import getpass
import re
import secrets
import socket
import time
from datetime import UTC, datetime, timedelta

ROOT = "/var/lib/ferryman"


def state_dir(project: str) -> str:
    return f"{ROOT}/{project}"


_last_stamp: list[datetime] = []


def stamp_id(prefix: str, now: datetime | None = None) -> str:
    """A time-ordered id, unique below one second: r20261130-195501-042113a3f9 (microseconds,
    strictly increasing within this process, then a random suffix against other machines)."""
    now = now or datetime.now(UTC)
    if _last_stamp and now <= _last_stamp[0]:
        now = _last_stamp[0] + timedelta(microseconds=1)
    _last_stamp[:] = [now]
    return f"{prefix}{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}{secrets.token_hex(2)}"


# Ids of earlier versions stop at the second.
ID_PATTERN = re.compile(r"^[a-z]\d{8}-\d{6}(-\d{6}[0-9a-f]{4})?$")


def release_id(now: datetime | None = None) -> str:
    return stamp_id("r", now)


# The dashboard's signed-in user, for the runs it starts: history, locks and audit name them.
acting_user: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ferryman_acting_user", default=None)


def operator() -> str:
    try:
        user = getpass.getuser()
    except OSError:
        user = "unknown"
    here = f"{user}@{socket.gethostname()}"
    web_user = acting_user.get()
    return f"{web_user} (web, {here})" if web_user else here


_APPEND = 'mkdir -p "$1" && printf "%s\\n" "$3" >> "$1/$2"'
_WRITE = 'mkdir -p "$(dirname "$1")" && cat > "$1"'
# An absent file is told by the exit status (EX_NOINPUT), never by the words of an error.
ABSENT = 66
_READ = '[ -e "$1" ] || exit 66; cat -- "$1"'
_TAIL = '[ -e "$2" ] || exit 66; tail -n "$1" -- "$2"'


def append_record(project: str, line: str) -> list[str]:
    """argv that appends one record line (record.py) to the history."""
    return append_line(project, "releases.jsonl", line)


def append_line(project: str, name: str, line: str) -> list[str]:
    """argv that appends one JSON line to a file of the project's state folder."""
    return ["sh", "-c", _APPEND, "ferryman-record", state_dir(project), name, line]


def read_records(project: str, last: int = 200, name: str = "releases.jsonl") -> list[str]:
    """argv that prints the last lines of a state file (the history by default); exits ABSENT
    when there is none yet."""
    return ["sh", "-c", _TAIL, "ferryman-history", str(last), f"{state_dir(project)}/{name}"]


def read_file(path: str) -> list[str]:
    """argv that prints a file; exits ABSENT when it does not exist."""
    return ["sh", "-c", _READ, "ferryman-read", path]


def write_file(path: str) -> list[str]:
    """argv that writes its stdin to path on the host (creating folders)."""
    return ["sh", "-c", _WRITE, "ferryman-write", path]


def compose_override_path(project: str, compose_project: str, service: str) -> str:
    return f"{state_dir(project)}/compose/{compose_project}-{service}.override.yml"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def monotonic() -> float:
    return time.monotonic()
