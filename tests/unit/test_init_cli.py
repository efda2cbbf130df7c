"""`ferryman init` refusals that need no server: bad options, an existing file, and a host
nobody answers on (a closed port on 127.0.0.1). Each exits with its class's code and writes
nothing."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from ferryman.cli.app import app


def run(config: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["-c", str(config), "init", *args],
                              env={"COLUMNS": "200", "NO_COLOR": "1"})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_malformed_env_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "ferryman.yml"
    res = run(target, "--env", "test=root@bad host", "--write")
    assert res.exit_code == 2
    assert "--env 'test=root@bad host'" in res.output
    assert not target.exists()


def test_force_needs_write(tmp_path: Path) -> None:
    res = run(tmp_path / "f.yml", "--env", "test=root@127.0.0.1", "--force")
    assert res.exit_code == 2 and "--force only goes with --write" in res.output


def test_existing_file_refused_before_connecting(tmp_path: Path) -> None:
    target = tmp_path / "ferryman.yml"
    target.write_text("# mine\n")
    # The host does not exist: the refusal comes first, and fast.
    res = run(target, "--env", f"test=root@127.0.0.1:{closed_port()}", "--write")
    assert res.exit_code == 2
    assert "exists: init does not write over it" in res.output
    assert target.read_text() == "# mine\n"


def test_unreachable_host_is_exit_3_and_nothing_written(tmp_path: Path) -> None:
    target = tmp_path / "ferryman.yml"
    res = run(target, "--env", f"test=root@127.0.0.1:{closed_port()}", "--write")
    assert res.exit_code == 3, res.output
    assert "test-1" in res.output and "refused" in res.output.lower()
    assert not target.exists()
