"""Who may use the dashboard, and what they may do there.

Users live in `ferryman-users.json` beside `ferryman.yml` (argon2id hashes, mode 0600, written
atomically); sessions live in server memory; every state-changing request carries a CSRF token
and an Origin of the dashboard itself; failed logins are rate-limited per client and per name.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import Request

from ..config import ConfigError, ConfigIssue
from ..errors import BadInput

USERS_FILE = "ferryman-users.json"
FORMAT_VERSION = 1
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"

Clock = Callable[[], float]


def users_path_for(config_path: Path) -> Path:
    """The users file sits beside ferryman.yml, so one project directory holds both."""
    return Path(config_path).parent / USERS_FILE


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_NAMES = ", ".join(role.value for role in Role)
_ROLES = frozenset(Role)


@dataclass(frozen=True)
class User:
    name: str
    role: Role


def may_read(role: Role) -> bool:
    """Every signed-in user sees every environment."""
    return role in _ROLES


def may_act(role: Role, *, confirm_env: bool) -> bool:
    """Viewers never change anything; operators only where the environment does not ask for
    confirmation (`policy.confirm`, typically production); admins everywhere."""
    if role == Role.ADMIN:
        return True
    if role == Role.OPERATOR:
        return not confirm_env
    return False


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadInput(f"unknown role {value!r}; expected one of {ROLE_NAMES}") from None


def _check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise BadInput(f"bad user name {name!r}; expected {NAME_RULE}")


def _check_password(password: str) -> None:
    if not password:
        raise BadInput("empty password; a user needs a password")


class UserStore:
    """The users file. Reads it again whenever it changed on disk, so users added with
    `ferryman web user add` can sign in while the server runs."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.RLock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, dict[str, str]] = {}
        self._dummy: str | None = None

    # reading

    def exists(self) -> bool:
        with self._lock:
            return bool(self._current())

    def users(self) -> list[User]:
        with self._lock:
            return [User(name, Role(rec["role"])) for name, rec in sorted(self._current().items())]

    def get(self, name: str) -> User | None:
        """The user as the file says now (None once removed): lets a server re-check a
        session's user on each request."""
        with self._lock:
            rec = self._current().get(name)
            return User(name, Role(rec["role"])) if rec else None

    def stamp(self, name: str) -> str | None:
        """A short fingerprint of the user's stored hash: it changes with the password, so a
        server can end the sessions opened with the old one."""
        with self._lock:
            rec = self._current().get(name)
        if not rec:
            return None
        return hashlib.sha256(rec["hash"].encode()).hexdigest()[:16]

    def check(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None. An unknown name costs the same
        hash verification as a known one, so timing does not tell which names exist."""
        with self._lock:
            rec = self._current().get(name)
            stored = rec["hash"] if rec else self._dummy_hash()
        # Verify outside the lock: it is the slow part, and other logins must not queue on it.
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if rec is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._rehash(name, stored, password)
        return User(name, Role(rec["role"]))

    # changing

    def ensure_addable(self, name: str, role: Role | str) -> Role:
        """The role, once name and role are valid and the name is free; else BadInput."""
        _check_name(name)
        checked = _role(role)
        with self._lock:
            if name in self._current():
                raise BadInput(f"user {name!r} already exists in {self.path}",
                               hint="pick another name, or change its password with "
                                    "`ferryman web user passwd`")
        return checked

    def add(self, name: str, role: Role | str, password: str) -> User:
        with self._lock:
            checked = self.ensure_addable(name, role)
            _check_password(password)
            records = self._fresh()
            records[name] = {"role": checked.value, "hash": self._hasher.hash(password)}
            self._save(records)
        return User(name, checked)

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self._lock:
            records = self._fresh()
            self._known(records, name)["hash"] = self._hasher.hash(password)
            self._save(records)

    def remove(self, name: str) -> None:
        with self._lock:
            records = self._fresh()
            self._known(records, name)
            del records[name]
            self._save(records)

    # internals

    def _known(self, records: dict[str, dict[str, str]], name: str) -> dict[str, str]:
        if name not in records:
            raise BadInput(f"no user {name!r} in {self.path}")
        return records[name]

    def _dummy_hash(self) -> str:
        # Made with this store's hasher, so it costs what a real user's hash costs.
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _rehash(self, name: str, old: str, password: str) -> None:
        new = self._hasher.hash(password)
        with self._lock:
            records = self._fresh()
            rec = records.get(name)
            if rec is None or rec["hash"] != old:
                return  # changed meanwhile (passwd, remove): that change wins
            rec["hash"] = new
            # Upgrading a hash is a courtesy; a read-only file must not refuse the login.
            with contextlib.suppress(OSError):
                self._save(records)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(f"a readable file ({exc.strerror or exc})") from None
        # os.replace gives a new inode, so a rewrite within the mtime resolution is seen too.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current(self) -> dict[str, dict[str, str]]:
        stamp = self._stat()
        if stamp != self._stamp:
            self._records = self._read() if stamp is not None else {}
            self._stamp = stamp
        return self._records

    def _fresh(self) -> dict[str, dict[str, str]]:
        """A private copy of what is on disk now: read-modify-write starts from the file."""
        return {name: dict(rec) for name, rec in self._current().items()}

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"a readable UTF-8 file ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(f"valid JSON ({exc.msg}, column {exc.colno})",
                              line=exc.lineno) from None
        return self._parse(data)

    def _parse(self, data: Any) -> dict[str, dict[str, str]]:
        if not isinstance(data, dict):
            raise self._error("a JSON object with 'version' and 'users'", value=type(data).__name__)
        if data.get("version") != FORMAT_VERSION:
            raise self._error(str(FORMAT_VERSION), key="version", value=repr(data.get("version")))
        users = data.get("users")
        if not isinstance(users, dict):
            raise self._error("an object of users by name", key="users",
                              value=type(users).__name__)
        records: dict[str, dict[str, str]] = {}
        for name, rec in users.items():
            key = f"users.{name}"
            if not NAME_RE.fullmatch(name):
                raise self._error(f"a user name of {NAME_RULE}", key=key, value=repr(name))
            if not isinstance(rec, dict):
                raise self._error("an object with 'role' and 'hash'", key=key,
                                  value=type(rec).__name__)
            role, hashed = rec.get("role"), rec.get("hash")
            if role not in {r.value for r in Role}:
                raise self._error(f"one of {ROLE_NAMES}", key=f"{key}.role", value=repr(role))
            if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
                # Never echo the value: it is a password hash.
                raise self._error("an argon2 hash ($argon2id$...)", key=f"{key}.hash")
            records[name] = {"role": role, "hash": hashed}
        return records

    def _error(self, expected: str, *, key: str = "", value: str | None = None,
               line: int | None = None) -> ConfigError:
        return ConfigError([ConfigIssue(str(self.path), line, key, value, expected)])

    def _save(self, records: dict[str, dict[str, str]]) -> None:
        data = {"version": FORMAT_VERSION,
                "users": {name: records[name] for name in sorted(records)}}
        text = json.dumps(data, indent=2) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600 in the same directory, so os.replace is atomic and no
        # reader ever sees a half-written file or a moment of wider permissions.
        fd, tmp = tempfile.mkstemp(prefix=f".{USERS_FILE}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._records = records
        self._stamp = self._stat()


@dataclass
class Session:
    token: str
    user: User
    csrf: str
    created: float
    seen: float
    stamp: str = ""  # the user's password, as it was at sign-in (UserStore.stamp)


class Sessions:
    """Server-side sessions in memory: the cookie holds only a random token, and a restart
    signs everyone out."""

    def __init__(self, idle: float = 8 * 3600, absolute: float = 24 * 3600,
                 clock: Clock = time.time) -> None:
        self.idle = idle
        self.absolute = absolute
        self._clock = clock
        self._lock = threading.Lock()
        self._by_token: dict[str, Session] = {}

    def open(self, user: User) -> Session:
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sweep(now)  # keeps abandoned sessions from piling up
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if self._expired(session, now):
                del self._by_token[token]
                return None
            session.seen = now
            return session

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_token.pop(token, None)

    def drop_user(self, name: str) -> None:
        with self._lock:
            for token in [t for t, s in self._by_token.items() if s.user.name == name]:
                del self._by_token[token]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.created > self.absolute

    def _sweep(self, now: float) -> None:
        for token in [t for t, s in self._by_token.items() if self._expired(s, now)]:
            del self._by_token[token]


COOKIE = "ferryman_session"


def cookie_args(*, secure: bool) -> dict[str, Any]:
    """Keyword arguments for `Response.set_cookie`: out of reach of scripts, never sent by
    another site's request, and only over https when the dashboard is served so."""
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}


def _first(value: str | None) -> str | None:
    """The first entry of a forwarded header (proxies append with commas)."""
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return first or None


def _scheme(request: Request, *, trust_proxy: bool) -> str:
    if trust_proxy:
        forwarded = _first(request.headers.get("x-forwarded-proto"))
        if forwarded:
            return forwarded.lower()
    return request.url.scheme.lower()


def is_secure(request: Request, *, trust_proxy: bool) -> bool:
    return _scheme(request, trust_proxy=trust_proxy) == "https"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, default port filled in; None when it is not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _own_origin(request: Request, *, trust_proxy: bool) -> tuple[str, str, int] | None:
    host = _first(request.headers.get("x-forwarded-host")) if trust_proxy else None
    host = host or request.headers.get("host") or request.url.netloc
    if not host or any(c in host for c in "/?#@\\"):
        return None
    return _origin_of(f"{_scheme(request, trust_proxy=trust_proxy)}://{host}")


def origin_ok(request: Request, *, trust_proxy: bool) -> bool:
    """The request comes from a page of this dashboard: its Origin (or, without one, its
    Referer) is the dashboard's own scheme, host and port. Without either, refuse: browsers
    send Origin on every POST, so only a stripped request lacks both."""
    claimed = request.headers.get("origin")
    if claimed is None:
        claimed = request.headers.get("referer")
    if not claimed or claimed.strip().lower() == "null":
        return False
    theirs = _origin_of(claimed.strip())
    return theirs is not None and theirs == _own_origin(request, trust_proxy=trust_proxy)


def csrf_ok(session: Session, token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class LoginLimiter:
    """At most `attempts` failed logins per `window` seconds per client address and per
    user name; then refused until the window passes."""

    # Past this many tracked keys, failed() drops the expired ones (bounded memory).
    SWEEP_AT = 4096

    def __init__(self, attempts: int = 5, window: float = 300.0,
                 clock: Clock = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, client: str, name: str) -> float:
        now = self._clock()
        with self._lock:
            return max(self._wait(key, now) for key in self._keys(client, name))

    def failed(self, client: str, name: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(client, name):
                self._fails.setdefault(key, deque()).append(now)
            if len(self._fails) > self.SWEEP_AT:
                for key in list(self._fails):
                    self._prune(key, now)

    def succeeded(self, client: str, name: str) -> None:
        # The client's count stays: one good account must not reset guessing at others.
        with self._lock:
            self._fails.pop(("name", name), None)

    @staticmethod
    def _keys(client: str, name: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("client", client), ("name", name)

    def _prune(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._fails.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._fails[key]
            return None
        return times

    def _wait(self, key: tuple[str, str], now: float) -> float:
        times = self._prune(key, now)
        if times is None or len(times) < self.attempts:
            return 0.0
        # Allowed again once enough of the oldest failures have left the window.
        return times[len(times) - self.attempts] + self.window - now
