"""Dashboard users, roles, sessions, CSRF, origin checks and the login limiter."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.requests import Request

from ferryman.config import ConfigError
from ferryman.errors import EXIT_BAD_INPUT, BadInput
from ferryman.web.auth import (
    COOKIE,
    USERS_FILE,
    LoginLimiter,
    Role,
    Sessions,
    User,
    UserStore,
    cookie_args,
    csrf_ok,
    is_secure,
    may_act,
    may_read,
    origin_ok,
    users_path_for,
)


class CountingHasher(PasswordHasher):
    """Quick parameters, and a count of verifications (to see unknown names cost one too)."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash, password):  # type: ignore[no-untyped-def]
        self.verified += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / USERS_FILE


@pytest.fixture
def store(path: Path) -> UserStore:
    return UserStore(path, hasher=CountingHasher())


# users file


def test_users_file_sits_beside_the_config(tmp_path: Path) -> None:
    assert users_path_for(tmp_path / "ferryman.yml") == tmp_path / "ferryman-users.json"
    assert users_path_for(Path("ferryman.yml")) == Path("ferryman-users.json")


def test_password_round_trip_and_wrong_password(store: UserStore) -> None:
    assert store.add("alice", "admin", "s3cret") == User("alice", Role.ADMIN)
    assert store.check("alice", "s3cret") == User("alice", Role.ADMIN)
    assert store.check("alice", "wrong") is None
    assert store.check("alice", "") is None
    assert store.check("Alice", "s3cret") is None  # names are exact


def test_unknown_user_is_none_and_still_costs_a_verification(path: Path) -> None:
    hasher = CountingHasher()
    store = UserStore(path, hasher=hasher)
    store.add("alice", Role.VIEWER, "pw")
    assert store.check("mallory", "pw") is None
    assert hasher.verified == 1
    assert store.check("", "pw") is None
    assert hasher.verified == 2


def test_file_format_mode_0600_and_no_plain_password(store: UserStore, path: Path) -> None:
    store.add("alice", "admin", "s3cret")
    store.add("bob", Role.OPERATOR, "hunter2")
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["users"]["alice"]["role"] == "admin"
    assert data["users"]["bob"]["role"] == "operator"
    assert data["users"]["alice"]["hash"].startswith("$argon2id$")
    assert "s3cret" not in path.read_text()
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [USERS_FILE]  # no temp file left


def test_write_is_atomic(store: UserStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add("alice", "admin", "pw")
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.add("bob", "viewer", "pw")
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is whole
    assert sorted(p.name for p in path.parent.iterdir()) == [USERS_FILE]  # temp file removed
    assert [u.name for u in store.users()] == ["alice"]


def test_exists_needs_a_user(store: UserStore, path: Path) -> None:
    assert not store.exists()
    store.add("alice", "admin", "pw")
    assert store.exists()
    store.remove("alice")
    assert path.exists() and not store.exists()


@pytest.mark.parametrize(
    ("name", "role", "password", "says"),
    [
        ("alice", "admin", "pw", "already exists"),
        ("bad name", "admin", "pw", "bad user name"),
        ("x" * 65, "admin", "pw", "bad user name"),
        ("", "admin", "pw", "bad user name"),
        ("../etc", "admin", "pw", "bad user name"),
        ("bob", "root", "pw", "unknown role 'root'"),
        ("bob", "viewer", "", "empty password"),
    ],
)
def test_add_refuses_bad_input(store: UserStore, name: str, role: str, password: str,
                               says: str) -> None:
    store.add("alice", "admin", "pw")
    with pytest.raises(BadInput, match=says) as caught:
        store.add(name, role, password)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert [u.name for u in store.users()] == ["alice"]


def test_name_rule_allows_dots_dashes_underscores(store: UserStore) -> None:
    store.add("a.b-c_D9", "viewer", "pw")
    store.add("x" * 64, "viewer", "pw")
    assert [u.name for u in store.users()] == ["a.b-c_D9", "x" * 64]


def test_set_password_and_remove(store: UserStore) -> None:
    store.add("alice", "operator", "old")
    store.set_password("alice", "new")
    assert store.check("alice", "old") is None
    assert store.check("alice", "new") == User("alice", Role.OPERATOR)
    with pytest.raises(BadInput, match="empty password"):
        store.set_password("alice", "")
    with pytest.raises(BadInput, match="no user 'bob'"):
        store.set_password("bob", "pw")
    with pytest.raises(BadInput, match="no user 'bob'"):
        store.remove("bob")
    store.remove("alice")
    assert store.users() == []
    assert store.check("alice", "new") is None


def test_changes_from_another_process_are_seen(path: Path) -> None:
    server = UserStore(path, hasher=CountingHasher())
    cli = UserStore(path, hasher=CountingHasher())
    assert not server.exists()
    assert server.check("bob", "pw") is None
    cli.add("bob", "viewer", "pw")
    assert server.check("bob", "pw") == User("bob", Role.VIEWER)
    cli.set_password("bob", "pw2")
    assert server.check("bob", "pw") is None
    assert server.check("bob", "pw2") is not None
    cli.remove("bob")
    assert server.get("bob") is None
    assert server.check("bob", "pw2") is None


def test_reload_on_mtime_change_only(path: Path) -> None:
    store = UserStore(path, hasher=CountingHasher())
    store.add("alice", "admin", "pw")
    data = json.loads(path.read_text())
    data["users"]["alice"]["role"] = "viewer"
    stamp = path.stat()
    path.write_text(json.dumps(data))  # rewritten in place: same inode
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert store.get("alice") == User("alice", Role.VIEWER)


def test_check_upgrades_an_outdated_hash(path: Path) -> None:
    UserStore(path, hasher=CountingHasher(time_cost=1)).add("alice", "admin", "pw")
    old = json.loads(path.read_text())["users"]["alice"]["hash"]
    stronger = UserStore(path, hasher=CountingHasher(time_cost=2))
    assert stronger.check("alice", "pw") == User("alice", Role.ADMIN)
    new = json.loads(path.read_text())["users"]["alice"]["hash"]
    assert new != old and "t=2" in new
    assert stronger.check("alice", "pw") == User("alice", Role.ADMIN)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "valid JSON"),
        ("[]", "a JSON object"),
        ('{"version": 2, "users": {}}', "version: got 2"),
        ('{"version": 1}', "users: got NoneType"),
        ('{"version": 1, "users": {"a": {"role": "god", "hash": "$argon2id$x"}}}',
         "users.a.role: got 'god'; expected one of viewer, operator, admin"),
        ('{"version": 1, "users": {"a": {"role": "admin", "hash": "plain"}}}',
         "users.a.hash: expected an argon2 hash"),
        ('{"version": 1, "users": {"a b": {"role": "admin", "hash": "$argon2id$x"}}}',
         "users.a b: got 'a b'"),
        ('{"version": 1, "users": {"a": "admin"}}', "users.a: got str"),
    ],
)
def test_malformed_file_names_file_and_fault(path: Path, content: str, says: str) -> None:
    path.write_text(content)
    store = UserStore(path, hasher=CountingHasher())
    with pytest.raises(ConfigError) as caught:
        store.users()
    message = str(caught.value)
    assert str(path) in message
    assert says in message
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "plain" not in message  # a hash is never echoed


def test_malformed_json_gives_the_line(path: Path) -> None:
    path.write_text('{\n  "version": 1,\n  "users": {,}\n}\n')
    with pytest.raises(ConfigError, match=rf"{path}:3: expected valid JSON"):
        UserStore(path).check("alice", "pw")


# roles


@pytest.mark.parametrize(
    ("role", "plain", "confirm"),
    [
        (Role.VIEWER, False, False),
        (Role.OPERATOR, True, False),
        (Role.ADMIN, True, True),
    ],
)
def test_role_permissions(role: Role, plain: bool, confirm: bool) -> None:
    assert may_read(role)
    assert may_act(role, confirm_env=False) is plain
    assert may_act(role, confirm_env=True) is confirm


def test_roles_are_strings() -> None:
    assert Role("operator") is Role.OPERATOR
    assert may_act(Role("admin"), confirm_env=True)
    assert str(Role.VIEWER) == "viewer"


# sessions


def test_session_open_get_close() -> None:
    sessions = Sessions(clock=Clock())
    alice = User("alice", Role.ADMIN)
    one, two = sessions.open(alice), sessions.open(alice)
    assert one.token != two.token and one.csrf != two.csrf and one.token != one.csrf
    assert len(one.token) >= 40 and len(one.csrf) >= 40
    assert sessions.get(one.token) is one
    assert sessions.get(None) is None
    assert sessions.get("") is None
    assert sessions.get("forged") is None
    sessions.close(one.token)
    sessions.close(None)
    assert sessions.get(one.token) is None
    assert sessions.get(two.token) is two


def test_session_idle_expiry_refreshed_by_use() -> None:
    clock = Clock()
    sessions = Sessions(idle=60, absolute=3600, clock=clock)
    session = sessions.open(User("alice", Role.VIEWER))
    clock.now += 50
    assert sessions.get(session.token) is session
    assert session.seen == clock.now
    clock.now += 50  # 100 s since opened, 50 s since seen
    assert sessions.get(session.token) is session
    clock.now += 61
    assert sessions.get(session.token) is None
    clock.now -= 61  # once expired, gone for good
    assert sessions.get(session.token) is None


def test_session_absolute_expiry_despite_activity() -> None:
    clock = Clock()
    sessions = Sessions(idle=60, absolute=200, clock=clock)
    session = sessions.open(User("alice", Role.VIEWER))
    for _ in range(4):
        clock.now += 50
        assert sessions.get(session.token) is session
    clock.now += 1
    assert sessions.get(session.token) is None


def test_drop_user_ends_only_their_sessions() -> None:
    sessions = Sessions(clock=Clock())
    a1 = sessions.open(User("alice", Role.ADMIN))
    a2 = sessions.open(User("alice", Role.ADMIN))
    b = sessions.open(User("bob", Role.VIEWER))
    sessions.drop_user("alice")
    assert sessions.get(a1.token) is None and sessions.get(a2.token) is None
    assert sessions.get(b.token) is b


def test_expired_sessions_are_swept_on_open() -> None:
    clock = Clock()
    sessions = Sessions(idle=10, clock=clock)
    for _ in range(3):
        sessions.open(User("alice", Role.ADMIN))
    clock.now += 11
    sessions.open(User("bob", Role.ADMIN))
    assert len(sessions._by_token) == 1


def test_csrf_compare() -> None:
    session = Sessions(clock=Clock()).open(User("alice", Role.ADMIN))
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, session.csrf[:-1])
    assert not csrf_ok(session, "x" + session.csrf)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, "é" * 43)  # non-ASCII does not raise


def test_cookie_args() -> None:
    assert COOKIE == "ferryman_session"
    assert cookie_args(secure=True) == {"httponly": True, "samesite": "strict", "secure": True,
                                        "path": "/"}
    assert cookie_args(secure=False)["secure"] is False


# origin and scheme


def request(headers: dict[str, str], *, scheme: str = "http",
            server: tuple[str, int] = ("127.0.0.1", 8765)) -> Request:
    return Request({
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": "/releases",
        "raw_path": b"/releases",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in headers.items()],
        "server": server,
        "client": ("10.0.0.9", 50000),
    })


HOST = {"Host": "dash.example:8765"}


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"Origin": "http://dash.example:8765"}, True),
        ({"Origin": "http://DASH.example:8765"}, True),
        ({"Origin": "http://evil.example:8765"}, False),
        ({"Origin": "http://dash.example:8766"}, False),
        ({"Origin": "http://dash.example"}, False),
        ({"Origin": "https://dash.example:8765"}, False),
        ({"Origin": "http://dash.example.evil.example:8765"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": ""}, False),
        ({"Origin": "dash.example:8765"}, False),
        ({"Referer": "http://dash.example:8765/envs/prod?x=1"}, True),
        ({"Referer": "http://evil.example/dash.example:8765"}, False),
        ({"Origin": "http://evil.example", "Referer": "http://dash.example:8765/"}, False),
        ({}, False),
    ],
)
def test_origin_ok(headers: dict[str, str], ok: bool) -> None:
    assert origin_ok(request(HOST | headers), trust_proxy=False) is ok


def test_origin_default_ports() -> None:
    req = request({"Host": "dash.example", "Origin": "https://dash.example:443"}, scheme="https")
    assert origin_ok(req, trust_proxy=False)
    req = request({"Host": "dash.example:80", "Origin": "http://dash.example"})
    assert origin_ok(req, trust_proxy=False)


def test_origin_behind_a_proxy() -> None:
    forwarded = {"Host": "127.0.0.1:8765", "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "ferry.example.com", "Origin": "https://ferry.example.com"}
    assert origin_ok(request(forwarded), trust_proxy=True)
    # Without trust, forwarded headers are anyone's to write: only the Host counts.
    assert not origin_ok(request(forwarded), trust_proxy=False)
    assert origin_ok(request(forwarded | {"Origin": "http://127.0.0.1:8765"}), trust_proxy=False)
    # A chain of proxies: the first entry is the client-facing one.
    chained = forwarded | {"X-Forwarded-Proto": "https, http",
                           "X-Forwarded-Host": "ferry.example.com, inner:8765"}
    assert origin_ok(request(chained), trust_proxy=True)
    # Proto alone forwarded: the Host header names the host.
    proto_only = {"Host": "ferry.example.com", "X-Forwarded-Proto": "https",
                  "Origin": "https://ferry.example.com"}
    assert origin_ok(request(proto_only), trust_proxy=True)
    assert not origin_ok(request(proto_only | {"Origin": "https://evil.example"}),
                         trust_proxy=True)


def test_is_secure() -> None:
    assert is_secure(request({}, scheme="https"), trust_proxy=False)
    assert not is_secure(request({}), trust_proxy=False)
    assert not is_secure(request({"X-Forwarded-Proto": "https"}), trust_proxy=False)
    assert is_secure(request({"X-Forwarded-Proto": "https"}), trust_proxy=True)
    assert is_secure(request({"X-Forwarded-Proto": "HTTPS, http"}), trust_proxy=True)
    assert not is_secure(request({"X-Forwarded-Proto": "http"}), trust_proxy=True)


# login limiter


def test_limiter_blocks_after_attempts_until_window_passes() -> None:
    clock = Clock()
    limiter = LoginLimiter(attempts=3, window=100, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4", "alice") == 0
        limiter.failed("1.2.3.4", "alice")
        clock.now += 10
    assert limiter.retry_after("1.2.3.4", "alice") == pytest.approx(70)
    clock.now += 69
    assert limiter.retry_after("1.2.3.4", "alice") == pytest.approx(1)
    clock.now += 1  # the first failure leaves the window
    assert limiter.retry_after("1.2.3.4", "alice") == 0
    limiter.failed("1.2.3.4", "alice")
    assert limiter.retry_after("1.2.3.4", "alice") == pytest.approx(10)


def test_limiter_per_name_across_clients() -> None:
    limiter = LoginLimiter(attempts=2, window=100, clock=Clock())
    limiter.failed("10.0.0.1", "alice")
    limiter.failed("10.0.0.2", "alice")
    assert limiter.retry_after("10.0.0.3", "alice") == pytest.approx(100)
    assert limiter.retry_after("10.0.0.3", "bob") == 0


def test_limiter_per_client_across_names() -> None:
    limiter = LoginLimiter(attempts=2, window=100, clock=Clock())
    limiter.failed("10.0.0.1", "alice")
    limiter.failed("10.0.0.1", "bob")
    assert limiter.retry_after("10.0.0.1", "carol") == pytest.approx(100)
    assert limiter.retry_after("10.0.0.2", "carol") == 0


def test_limiter_success_clears_the_name_not_the_client() -> None:
    limiter = LoginLimiter(attempts=2, window=100, clock=Clock())
    limiter.failed("10.0.0.1", "alice")
    limiter.failed("10.0.0.2", "alice")
    limiter.succeeded("10.0.0.3", "alice")
    assert limiter.retry_after("10.0.0.3", "alice") == 0
    limiter.failed("10.0.0.1", "bob")
    assert limiter.retry_after("10.0.0.1", "mallory") == pytest.approx(100)
    limiter.succeeded("10.0.0.1", "mallory")
    assert limiter.retry_after("10.0.0.1", "mallory") == pytest.approx(100)


def test_limiter_forgets_old_failures() -> None:
    clock = Clock()
    limiter = LoginLimiter(attempts=5, window=10, clock=clock)
    limiter.SWEEP_AT = 3
    for i in range(4):
        limiter.failed(f"10.0.0.{i}", f"user{i}")
    clock.now += 10
    limiter.failed("10.0.0.9", "user9")
    assert len(limiter._fails) == 2
