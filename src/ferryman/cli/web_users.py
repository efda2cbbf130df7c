"""`ferryman web user`: who may sign in to the dashboard, and with which role.

The users file sits beside ferryman.yml; a running dashboard sees changes at the next login.
"""

from __future__ import annotations

import sys

import typer
from rich import box
from rich.table import Table

from ..errors import FerrymanError
from ..web.auth import ROLE_NAMES, UserStore, users_path_for
from .common import err_console, fail, options, out_console, print_json

users_app = typer.Typer(help="Manage the dashboard's users.", no_args_is_help=True)

PASSWORD_STDIN_HELP = "Read the password from standard input instead of prompting."


def _store(ctx: typer.Context) -> UserStore:
    return UserStore(users_path_for(options(ctx).config))


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    # One line, like `docker login --password-stdin`: the trailing newline is not part of it.
    text = sys.stdin.read().rstrip("\r\n")
    if "\n" in text or "\r" in text:
        raise fail("the password on standard input spans several lines", 2)
    return text


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name: letters, digits, '.', '_', '-'."),
    role: str = typer.Option(..., "--role", "-r", help=f"One of {ROLE_NAMES}."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help=PASSWORD_STDIN_HELP),
) -> None:
    """Add a user with a role and a password."""
    store = _store(ctx)
    try:
        store.ensure_addable(name, role)  # before asking for a password twice
        user = store.add(name, role, _password(password_stdin))
    except FerrymanError as exc:
        raise fail(str(exc), exc.exit_code, exc.hint) from None
    err_console.print(f"added {user.name} ({user.role.value}) to {store.path}", style="green",
                      highlight=False, markup=False)


@users_app.command("list")
def list_users(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the users as JSON."),
) -> None:
    """List the users and their roles."""
    store = _store(ctx)
    try:
        users = store.users()
    except FerrymanError as exc:
        raise fail(str(exc), exc.exit_code, exc.hint) from None
    if json_out:
        print_json([{"name": u.name, "role": u.role.value} for u in users])
        return
    if not users:
        err_console.print(f"no users in {store.path}; add one with "
                          "`ferryman web user add NAME --role admin`",
                          highlight=False, markup=False)
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("name")
    table.add_column("role")
    for user in users:
        table.add_row(user.name, user.role.value)
    out_console.print(table)


@users_app.command("remove")
def remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user to remove."),
) -> None:
    """Remove a user: they can no longer sign in."""
    store = _store(ctx)
    try:
        store.remove(name)
    except FerrymanError as exc:
        raise fail(str(exc), exc.exit_code, exc.hint) from None
    err_console.print(f"removed {name} from {store.path}", highlight=False, markup=False)


@users_app.command("passwd")
def passwd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user whose password changes."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help=PASSWORD_STDIN_HELP),
) -> None:
    """Set a user's password."""
    store = _store(ctx)
    try:
        if store.get(name) is None:
            raise fail(f"no user {name!r} in {store.path}", 2)
        store.set_password(name, _password(password_stdin))
    except FerrymanError as exc:
        raise fail(str(exc), exc.exit_code, exc.hint) from None
    err_console.print(f"password of {name} changed in {store.path}", highlight=False,
                      markup=False)
