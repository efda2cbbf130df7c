"""init's read-only commands: exact argv, and their scripts run for real by this machine's sh
against files and an HTTP server made here (127.0.0.1 only)."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.init import read


def run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_argv_builders_are_exact() -> None:
    assert read.inspect_all()[:2] == ["sh", "-c"]
    assert read.inspect_all()[3:] == ["ferryman-inspect-all"]
    assert read.own_addresses()[3:] == ["ferryman-addresses"]
    argv = read.config_files(["/opt/a", "/srv/b c"], max_bytes=1000)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["ferryman-config-files", "1000", "/opt/a",
                                                     "/srv/b c"]
    argv = read.http_status(["http://127.0.0.1:8080"], timeout=2)
    assert argv[3:] == ["ferryman-http-status", "2", "http://127.0.0.1:8080"]


def test_only_reading_commands() -> None:
    """Nothing init runs writes: no docker verb but ps and inspect, no redirect into a file."""
    scripts = [read.inspect_all()[2], read.config_files([])[2], read.http_status([])[2]]
    for script in scripts:
        for word in ("docker rm", "docker stop", "docker start", "docker run", "docker exec",
                     "docker update", "docker rename", "docker create", " rm ", "mv ", "cp ",
                     "tee ", "mkdir", "-X POST", "--data"):
            assert word not in script, (word, script)
        assert "> " not in script.replace(">/dev/null", "").replace("2>/dev/null", "")


def test_config_files_reads_folders_files_and_odd_names(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "conf" / "deep").mkdir(parents=True)
    (app / "conf" / "settings.json").write_text('{"base_url": "http://10.0.0.58:9380"}')
    (app / "conf" / "deep" / "more.yml").write_text("db:\n  host: 10.0.0.58\n")
    (app / "conf" / "big.json").write_text("[" + "1," * 2000 + "1]")  # over the limit below
    (app / "node_modules").mkdir()
    (app / "node_modules" / "x.json").write_text("{}")
    (app / "notes.txt").write_text("not config")
    odd = tmp_path / "a b;$(touch pwned)"
    odd.mkdir()
    (odd / "c d.json").write_text('{"x": "y"}')
    code = tmp_path / "src"
    code.mkdir()
    (code / "package.json").write_text('{"name": "app"}')
    single = tmp_path / "one.json"
    single.write_text('{"k": "v"}')
    paths = [str(app), str(odd), str(code), str(single), str(tmp_path / "absent")]

    out = read.parse_config_files(paths, run(read.config_files(paths, max_bytes=1024)))

    assert out[str(app)].kind == "dir" and not out[str(app)].code
    assert set(out[str(app)].files) == {str(app / "conf" / "settings.json"),
                                        str(app / "conf" / "deep" / "more.yml")}
    assert json.loads(out[str(app)].files[str(app / "conf" / "settings.json")]) == {
        "base_url": "http://10.0.0.58:9380"}
    assert out[str(odd)].files == {str(odd / "c d.json"): '{"x": "y"}'}
    assert out[str(code)].kind == "dir" and out[str(code)].code
    assert out[str(single)].kind == "file" and out[str(single)].files == {
        str(single): '{"k": "v"}'}
    assert out[str(tmp_path / "absent")].kind == "absent"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_own_addresses_leave_container_bridges_out() -> None:
    ip = ("2: eth0    inet 172.30.30.58/24 brd 172.30.30.255 scope global eth0\\   valid_lft\n"
          "3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\\n"
          "4: br-5f2a    inet 172.18.0.1/16 scope global br-5f2a\\\n"
          "2: eth0    inet6 2001:db8::5/64 scope global \\\n")
    assert read.parse_own_addresses(ip) == ["172.30.30.58", "2001:db8::5"]
    assert read.parse_own_addresses("10.0.0.5 172.17.0.1 \n") == ["10.0.0.5", "172.17.0.1"]
    # On this machine, for real: whatever it prints parses, and no bridge address is kept.
    mine = read.parse_own_addresses(run(read.own_addresses()))
    assert "172.17.0.1" not in mine or "docker0" not in run(["sh", "-c", "ip -o addr || true"])


def test_parse_config_files_ignores_garbage() -> None:
    bad = base64.b64encode(b"\xff\xfe").decode()
    stdout = f"d 1 -\nc 1 {bad} e30=\nc 9 x y\nnoise\nf 2\n"
    out = read.parse_config_files(["/a", "/b"], stdout)
    assert out["/a"].files == {} and out["/b"].kind == "file"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/health": 404, "/healthz": 200, "/": 200}.get(self.path, 404)
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()


def test_http_status_stops_at_the_first_answer(server: int) -> None:
    closed = "http://127.0.0.1:9"  # discard: nobody listens here
    base = f"http://127.0.0.1:{server}"
    got = read.parse_http_status(run(read.http_status([base, closed], timeout=2)))
    assert got == {f"{base}/health": 404, f"{base}/healthz": 200, f"{closed}/health": 0}
