"""The command table: a run imports only the command it runs, and the whole table stays what
help lists."""

from __future__ import annotations

import subprocess
import sys

from ferryman.cli.app import COMMANDS, app, command_in


def test_the_command_is_found_after_global_options() -> None:
    assert command_in(["-c", "release", "release", "test", "prod"]) == "release"
    assert command_in(["--config", "x.yml", "-v", "sync-data", "a", "b"]) == "sync-data"
    assert command_in(["-v", "web", "user", "add"]) == "web"
    assert command_in(["--help"]) is None and command_in([]) is None
    assert command_in(["nosuch"]) is None  # the whole table then says it has no such command


def test_the_whole_table_holds_every_command() -> None:
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == set(COMMANDS)


def test_a_release_does_not_load_doctor_init_or_the_dashboard() -> None:
    code = ("import sys; from ferryman.cli.app import build; build('release'); "
            "print(sorted(m for m in sys.modules if m.startswith(('ferryman.checks', "
            "'ferryman.init', 'ferryman.web', 'fastapi'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
