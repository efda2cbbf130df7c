"""The dashboard's server-side checks, through FastAPI's test client: sign-in, roles, CSRF and
Origin, confirmation, bad input. Every refusal must leave nothing started: no run, no log.

The environments' hosts are 127.0.0.1 ports where nothing answers (or, for the slow-host test,
a listener that never speaks): pages that read hosts show them unreachable."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ferryman.cli.app import app as cli
from ferryman.web.app import Settings, create_app
from ferryman.web.auth import Role, UserStore, users_path_for
from ferryman.web.runs import RunStore

BASE = "http://127.0.0.1"
CONFIG = """\
version: 1
project: shop
log_dir: {logs}
ssh:
  connect_timeout: 3
environments:
  test:
    address: 10.0.0.58
    hosts:
      - name: test-1
        address: root@127.0.0.1:{port}
  prod:
    address: 10.0.0.57
    hosts:
      - name: prod-1
        address: root@127.0.0.1:{prod_port}
    policy:
      allowed_tags: ["v*"]
      confirm: true
services:
  web:
    health:
      http: http://127.0.0.1:8080/health
data:
  volumes: [shop-data]
  stop: [web]
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ferryman.yml"
    path.write_text(CONFIG.format(logs=tmp_path / "logs", port=_closed_port(),
                                  prod_port=_closed_port()))
    return path


def _client(config: Path, **kw: object) -> TestClient:
    app = create_app(Settings(config, users_path_for(config), **kw))  # type: ignore[arg-type]
    return TestClient(app, base_url=BASE, follow_redirects=False)


def _add(config: Path, name: str, role: Role, password: str = "correct horse") -> None:
    UserStore(users_path_for(config)).add(name, role, password)


def _login(client: TestClient, name: str, password: str = "correct horse") -> int:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    res = client.post("/login", data={"name": name, "password": password, "csrf": token,
                                      "next": "/runs"}, headers={"Origin": BASE})
    return res.status_code


def _csrf(client: TestClient, path: str = "/runs") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _runs(config: Path) -> list[str]:
    return RunStore(config.parent / "logs").ids()


RELEASE = {"from": "test", "to": "prod"}


@pytest.fixture()
def viewer(config: Path) -> Iterator[TestClient]:
    _add(config, "vera", Role.VIEWER)
    with _client(config) as client:
        assert _login(client, "vera") == 303
        yield client


def test_without_users_the_loopback_dashboard_is_open_to_this_machine_only(config: Path) -> None:
    with _client(config) as client:
        res = client.get("/runs")
        assert res.status_code == 200 and "ferryman" in res.text
        assert "ferryman_session" in res.cookies
        # A page reached through another name (DNS rebinding) is refused.
        other = client.get("/runs", headers={"Host": "evil.example"})
        assert other.status_code == 421


def test_every_page_carries_a_strict_policy_and_no_inline_script(config: Path) -> None:
    with _client(config) as client:
        res = client.get("/runs")
    csp = res.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    for tag in re.findall(r"<script[^>]*>", res.text):
        assert "src=" in tag, tag
    assert "style=" not in res.text


def test_with_users_pages_ask_to_sign_in_and_wrong_passwords_are_limited(config: Path) -> None:
    _add(config, "ada", Role.ADMIN)
    with _client(config) as client:
        res = client.get("/runs")
        assert res.status_code == 303 and res.headers["location"].startswith("/login")
        assert _login(client, "ada", "wrong") == 401
        for _ in range(4):
            _login(client, "ada", "wrong")
        assert _login(client, "ada") == 429  # even the right password, until the window ends
    with _client(config) as client:  # (a fresh server forgets; a real one waits 5 minutes)
        assert _login(client, "ada") == 303
        res = client.get("/runs")
        assert res.status_code == 200 and "ada" in res.text
        cookie = next(c for c in client.cookies.jar if c.name == "ferryman_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert "strict" in str(cookie._rest.get("SameSite", "")).lower()  # type: ignore[attr-defined]


def test_a_sign_in_form_from_elsewhere_is_refused(config: Path) -> None:
    _add(config, "ada", Role.ADMIN)
    with _client(config) as client:
        res = client.post("/login", data={"name": "ada", "password": "correct horse",
                                          "csrf": "guess"}, headers={"Origin": BASE})
        assert res.status_code == 403
        assert "ferryman_session" not in res.cookies


def test_a_viewer_may_read_but_every_action_is_refused_and_nothing_starts(
        config: Path, viewer: TestClient) -> None:
    token = _csrf(viewer)
    for path, form in (("/act/release", RELEASE), ("/act/backup", {"env": "test"}),
                       ("/act/rollback", {"env": "test"})):
        res = viewer.post(path, data={**form, "csrf": token, "confirm": "prod"},
                          headers={"Origin": BASE})
        assert res.status_code == 403, (path, res.text)
        assert "may not change" in res.text
    assert _runs(config) == []
    refused = (config.parent / "logs" / "web-refused.jsonl").read_text()
    assert refused.count('"status": 403') == 3 and "vera" in refused


def test_an_operator_may_not_change_an_environment_that_asks_for_confirmation(
        config: Path) -> None:
    _add(config, "otto", Role.OPERATOR)
    with _client(config) as client:
        assert _login(client, "otto") == 303
        res = client.post("/act/release", data={**RELEASE, "csrf": _csrf(client),
                                                "confirm": "prod"}, headers={"Origin": BASE})
        assert res.status_code == 403 and "otto (operator) may not change prod" in res.text
    assert _runs(config) == []


def test_forms_without_the_token_or_from_another_origin_are_refused(config: Path) -> None:
    with _client(config) as client:
        token = _csrf(client)
        cases = [({"csrf": "stale"}, {"Origin": BASE}),
                 ({"csrf": token}, {"Origin": "http://evil.example"}),
                 ({"csrf": token}, {}),  # neither Origin nor Referer
                 ({}, {"Origin": BASE})]
        for extra, headers in cases:
            res = client.post("/act/release", data={**RELEASE, **extra, "confirm": "prod"},
                              headers=headers)
            assert res.status_code == 403, (extra, headers)
    assert _runs(config) == []


def test_prod_needs_its_name_typed(config: Path) -> None:
    with _client(config) as client:
        token = _csrf(client)
        for typed in ("", "PROD ", "test"):
            res = client.post("/act/release", data={**RELEASE, "csrf": token, "confirm": typed},
                              headers={"Origin": BASE})
            assert res.status_code == 400
            assert "prod asks for confirmation: type its name" in res.text
    assert _runs(config) == []


@pytest.mark.parametrize(("path", "form", "said"), [
    ("/act/release", {"from": "test", "to": "staging"}, "unknown environment TO 'staging'"),
    ("/act/release", {"from": "test", "to": "test"}, "FROM and TO are both 'test'"),
    ("/act/release", {"from": "test", "to": "prod", "services": "db"}, "unknown service db"),
    ("/act/restore", {"env": "test", "id": "../../etc"}, "'../../etc' is not a backup id"),
    ("/act/rollback", {"env": "test", "to": "yesterday"}, "'yesterday' is not a release id"),
    ("/act/reboot", {"env": "test"}, "unknown action 'reboot'"),
])
def test_bad_input_is_a_4xx_naming_it_and_starts_nothing(config: Path, path: str,
                                                          form: dict[str, str], said: str) -> None:
    with _client(config) as client:
        res = client.post(path, data={**form, "csrf": _csrf(client), "confirm": "prod"},
                          headers={"Origin": BASE})
        assert res.status_code == 400
        assert said in res.text.replace("&#39;", "'")
        page = client.get("/plan/release?from=test&to=nowhere")
        assert page.status_code == 400 and "unknown environment TO" in page.text
    assert _runs(config) == []


def test_run_pages_refuse_ids_that_are_not_runs(config: Path) -> None:
    with _client(config) as client:
        for rid in ("..%2F..%2Fetc%2Fpasswd", "x", "20261130-223250-release-1"):
            res = client.get(f"/runs/{rid}")
            assert res.status_code in (400, 404), rid


def test_the_overview_shows_an_unreachable_host_and_one_that_never_answers(
        config: Path) -> None:
    # prod's host accepts connections and never says a word: the per-host deadline ends it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    config.write_text(CONFIG.format(logs=config.parent / "logs", port=_closed_port(),
                                    prod_port=silent.getsockname()[1]))
    try:
        with _client(config, host_timeout=1.5) as client:
            res = client.get("/")
        assert res.status_code == 200
        assert res.text.count("unreachable") >= 2
        assert "no answer in 1.5s" in res.text
    finally:
        stop.set()
        silent.close()
        for s in held:
            s.close()


def test_a_bind_reachable_from_other_machines_needs_users(config: Path) -> None:
    res = CliRunner().invoke(cli, ["-c", str(config), "web", "--bind", "0.0.0.0:8799"])
    assert res.exit_code == 2
    assert "has no users" in res.output and "web user add" in res.output


def test_signing_out_ends_the_session(config: Path) -> None:
    _add(config, "ada", Role.ADMIN)
    with _client(config) as client:
        assert _login(client, "ada") == 303
        token = _csrf(client)
        res = client.post("/logout", data={"csrf": token}, headers={"Origin": BASE})
        assert res.status_code == 303 and res.headers["location"] == "/login"
        assert client.get("/runs").status_code == 303  # back to the sign-in page
        # The old cookie, replayed, opens nothing either.
        client.cookies.set("ferryman_session", token)
        assert client.get("/runs").status_code == 303


def test_a_user_removed_from_the_terminal_is_signed_out(config: Path) -> None:
    _add(config, "otto", Role.OPERATOR)
    _add(config, "ada", Role.ADMIN)
    with _client(config) as client:
        assert _login(client, "otto") == 303
        assert client.get("/runs").status_code == 200
        UserStore(users_path_for(config)).remove("otto")
        assert client.get("/runs").status_code == 303


def test_open_access_is_for_this_machines_browser_only(config: Path) -> None:
    with _client(config) as client:
        # Through a proxy (even one on this machine) the world would be admin: refused.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            assert client.get("/runs", headers={header: "203.0.113.9"}).status_code == 421
        # One session for this machine's browser, not one per request.
        first = client.get("/runs").cookies.get("ferryman_session")
        client.cookies.clear()
        assert client.get("/runs").cookies.get("ferryman_session") == first
    with _client(config, trust_proxy=True) as client:  # behind a proxy: sign-in, always
        assert client.get("/runs").status_code == 303
    _add(config, "ada", Role.ADMIN)
    UserStore(users_path_for(config)).remove("ada")  # the last user gone: still sign-in
    with _client(config) as client:
        assert client.get("/runs").status_code == 303


def test_trust_proxy_without_users_is_refused(config: Path) -> None:
    res = CliRunner().invoke(cli, ["-c", str(config), "web", "--trust-proxy"])
    assert res.exit_code == 2 and "--trust-proxy" in res.output and "no users" in res.output


def test_two_environments_asking_for_confirmation_both_want_their_name(config: Path) -> None:
    config.write_text(config.read_text().replace(
        "  test:\n    address: 10.0.0.58\n",
        "  test:\n    address: 10.0.0.58\n    policy: {confirm: true}\n"))
    with _client(config) as client:
        token = _csrf(client)
        plan = client.get("/plan/sync-data?from=test&to=prod")
        assert plan.status_code in (200, 502)  # the hosts do not answer; the form is the point
        one = client.post("/act/sync-data", data={"from": "test", "to": "prod", "csrf": token,
                                                  "confirm": "prod"}, headers={"Origin": BASE})
        assert one.status_code == 400 and "test asks for confirmation" in one.text
        assert _runs(config) == []
        both = client.post("/act/sync-data", data={"from": "test", "to": "prod", "csrf": token,
                                                   "confirm": ["test", "prod"]},
                           headers={"Origin": BASE})
        assert both.status_code == 303 and "/runs/" in both.headers["location"]


def _write_run(config: Path, name: str, lines: list[dict]) -> str:
    import json
    import os

    logs = config.parent / "logs"
    logs.mkdir(exist_ok=True)
    run_id = f"20261130-120000-{name}-{os.getpid()}-abcdef"
    (logs / f"{run_id}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run_id


UNDOING = [
    {"ts": "2026-11-30T12:00:00.000+00:00", "event": "run_start", "user": "ada",
     "action": "release", "params": {}},
    {"ts": "2026-11-30T12:00:00.100+00:00", "event": "flow_start", "steps": ["a", "b"],
     "params": {}},
    {"ts": "2026-11-30T12:00:00.200+00:00", "event": "step_start", "n": 1, "m": 2, "name": "a"},
    {"ts": "2026-11-30T12:00:00.300+00:00", "event": "step_ok", "n": 1, "m": 2, "name": "a",
     "duration": 0.1},
    {"ts": "2026-11-30T12:00:00.400+00:00", "event": "step_start", "n": "x", "m": 2,
     "name": "b"},  # a line of another shape: skipped, not a 500
    {"ts": "2026-11-30T12:00:00.500+00:00", "event": "undo_start", "name": "a", "host": "h"},
]


def test_a_run_caught_undoing_and_odd_lines_still_render(config: Path) -> None:
    rid = _write_run(config, "release", UNDOING)
    with _client(config) as client:
        page = client.get(f"/runs/{rid}")
        assert page.status_code == 200 and "undoing" in page.text
        assert client.get("/runs").status_code == 200
        assert client.get(f"/runs/{rid}%0A").status_code in (400, 404)


def test_the_live_stream_keeps_alive_through_a_quiet_step_and_ends_with_the_run(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from ferryman.web import app as web_app

    monkeypatch.setattr(web_app, "KEEPALIVE", 0.3)
    rid = _write_run(config, "release", UNDOING[:4])
    path = config.parent / "logs" / f"{rid}.jsonl"

    def finish_later() -> None:
        import time

        time.sleep(1.2)  # quiet for four keepalives
        with path.open("a") as f:
            f.write(json.dumps({"ts": "2026-11-30T12:00:02.000+00:00", "event": "run_end",
                                "exit_code": 0}) + "\n")

    with _client(config) as client:
        client.app.state.ferryman.launcher.busy["prod"] = rid  # type: ignore[attr-defined]
        threading.Thread(target=finish_later, daemon=True).start()
        seen = []
        with client.stream("GET", f"/runs/{rid}/events?start=4") as res:
            for line in res.iter_lines():
                seen.append(line)
                if line.startswith("event: end"):
                    break
    assert seen.count(": keepalive") >= 2
    assert "event: end" in seen


def test_a_dashboard_run_of_an_earlier_process_with_this_pid_is_not_taken_as_running(
        config: Path) -> None:
    """A restart (in a container) often gets the same pid: a run it did not start, cut
    without a last word, ended there."""
    rid = _write_run(config, "release", UNDOING[:4])
    with _client(config) as client:
        assert 'class="result gone"' in client.get(f"/runs/{rid}").text
        client.app.state.ferryman.launcher.busy["prod"] = rid  # type: ignore[attr-defined]
        assert 'class="result running"' in client.get(f"/runs/{rid}").text


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(config: Path) -> None:
    _add(config, "ada", Role.ADMIN)
    with _client(config) as client:
        assert _login(client, "ada") == 303
        old = client.cookies.get("ferryman_session")
        assert _login(client, "ada") == 303  # signing in again closes the browser's old one
        assert client.cookies.get("ferryman_session") != old
        client.cookies.clear()
        client.cookies.set("ferryman_session", old)  # type: ignore[arg-type]
        assert client.get("/runs").status_code == 303
        client.cookies.clear()
        assert _login(client, "ada") == 303
        assert client.get("/runs").status_code == 200
        UserStore(users_path_for(config)).set_password("ada", "another long passphrase")
        assert client.get("/runs").status_code == 303
