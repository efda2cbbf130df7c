"""`ferryman web user ...`: the users sub-app, mounted on a root like the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from argon2 import PasswordHasher
from typer.testing import CliRunner

from ferryman.cli import web_users
from ferryman.cli.common import Options
from ferryman.cli.web_users import users_app
from ferryman.web.auth import USERS_FILE, Role, User, UserStore

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = UserStore.__init__

    def init(self: UserStore, path: Path, hasher: PasswordHasher | None = None) -> None:
        real(self, path, hasher or FAST)

    monkeypatch.setattr(UserStore, "__init__", init)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "ferryman.yml"


def run(config: Path, *args: str, input: str | None = None) -> typer.testing.Result:
    root = typer.Typer()

    @root.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = Options(config)

    root.add_typer(users_app, name="user")
    return CliRunner().invoke(root, ["user", *args], input=input)


def store(config: Path) -> UserStore:
    return UserStore(config.parent / USERS_FILE)


def test_add_with_password_stdin(config: Path) -> None:
    result = run(config, "add", "alice", "--role", "admin", "--password-stdin", input="s3cret\n")
    assert result.exit_code == 0, result.output
    assert "added alice (admin)" in result.output
    assert store(config).check("alice", "s3cret") == User("alice", Role.ADMIN)
    assert "s3cret" not in result.output


def test_add_prompts_twice_without_stdin(config: Path) -> None:
    result = run(config, "add", "bob", "--role", "viewer", input="pw1\npw1\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1
    assert "Repeat for confirmation" in result.output
    assert "pw1" not in result.output  # hidden input
    assert store(config).check("bob", "pw1") == User("bob", Role.VIEWER)


def test_add_duplicate_refused(config: Path) -> None:
    run(config, "add", "alice", "--role", "admin", "--password-stdin", input="pw\n")
    result = run(config, "add", "alice", "--role", "viewer", "--password-stdin", input="pw2\n")
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert store(config).check("alice", "pw") == User("alice", Role.ADMIN)


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["add", "alice", "--role", "root", "--password-stdin"], "pw\n", "unknown role 'root'"),
        (["add", "a/b", "--role", "admin", "--password-stdin"], "pw\n", "bad user name"),
        (["add", "alice", "--role", "admin", "--password-stdin"], "\n", "empty password"),
        (["add", "alice", "--role", "admin", "--password-stdin"], "a\nb\n", "several lines"),
        (["remove", "nobody"], None, "no user 'nobody'"),
        (["passwd", "nobody", "--password-stdin"], "pw\n", "no user 'nobody'"),
    ],
)
def test_bad_input_exits_2(config: Path, args: list[str], stdin: str | None, says: str) -> None:
    result = run(config, *args, input=stdin)
    assert result.exit_code == 2
    assert says in result.output
    assert not store(config).exists()


def test_bad_role_refused_before_the_prompt(config: Path) -> None:
    result = run(config, "add", "alice", "--role", "root", input="")
    assert result.exit_code == 2
    assert "Password" not in result.output


def test_list_shows_names_and_roles_never_hashes(config: Path) -> None:
    run(config, "add", "alice", "--role", "admin", "--password-stdin", input="pw\n")
    run(config, "add", "bob", "--role", "operator", "--password-stdin", input="pw\n")
    result = run(config, "list")
    assert result.exit_code == 0, result.output
    assert "alice" in result.output and "admin" in result.output
    assert "bob" in result.output and "operator" in result.output
    assert "argon2" not in result.output and "$" not in result.output
    result = run(config, "list", "--json")
    assert json.loads(result.stdout) == [{"name": "alice", "role": "admin"},
                                         {"name": "bob", "role": "operator"}]


def test_list_without_users(config: Path) -> None:
    result = run(config, "list")
    assert result.exit_code == 0
    assert "no users" in result.output


def test_remove(config: Path) -> None:
    run(config, "add", "alice", "--role", "admin", "--password-stdin", input="pw\n")
    run(config, "add", "bob", "--role", "viewer", "--password-stdin", input="pw\n")
    result = run(config, "remove", "bob")
    assert result.exit_code == 0, result.output
    assert [u.name for u in store(config).users()] == ["alice"]
    assert "bob" not in run(config, "list").output


def test_passwd(config: Path) -> None:
    run(config, "add", "alice", "--role", "admin", "--password-stdin", input="old\n")
    result = run(config, "passwd", "alice", "--password-stdin", input="new\n")
    assert result.exit_code == 0, result.output
    assert store(config).check("alice", "old") is None
    assert store(config).check("alice", "new") == User("alice", Role.ADMIN)


def test_malformed_users_file_exits_2_naming_it(config: Path) -> None:
    (config.parent / USERS_FILE).write_text("{oops")
    result = run(config, "list")
    assert result.exit_code == 2
    assert USERS_FILE in result.output.replace("\n", "")


def test_module_exports_the_sub_app() -> None:
    assert isinstance(web_users.users_app, typer.Typer)
