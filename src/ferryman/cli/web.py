"""`ferryman web`: the dashboard, served on this machine; `ferryman web user`: its users."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from ..errors import EXIT_BAD_INPUT
from ..web.auth import UserStore, users_path_for
from .common import err_console, fail, load, options
from .web_users import users_app

app = typer.Typer(help="The dashboard: environments side by side, releases with a click.",
                  invoke_without_command=True)
app.add_typer(users_app, name="user")

DEFAULT_BIND = "127.0.0.1:8700"


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise fail(f"--bind {bind!r}: expected HOST:PORT, like {DEFAULT_BIND}", EXIT_BAD_INPUT)
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def serve(config: Path, bind: str, *, trust_proxy: bool = False, ready: str = "") -> None:
    """Runs the dashboard until interrupted (the demo calls this too)."""
    import uvicorn

    from ..web.app import Settings, create_app

    host, port = parse_bind(bind)
    users = users_path_for(config)
    loopback = is_loopback(host)
    if trust_proxy and not UserStore(users).exists():
        raise fail(f"--trust-proxy: behind a proxy the dashboard is reachable from other "
                   f"machines, and {users} has no users", EXIT_BAD_INPUT,
                   f"add one first: ferryman -c {config} web user add NAME --role admin")
    if not loopback and not UserStore(users).exists():
        raise fail(f"--bind {bind} is reachable from other machines and {users} has no users",
                   EXIT_BAD_INPUT, f"add one first: ferryman -c {config} web user add NAME "
                   "--role admin (or bind 127.0.0.1)")
    settings = Settings(config.resolve(), users, loopback=loopback, trust_proxy=trust_proxy)
    application = create_app(settings)
    shown = f"[{host}]" if ":" in host else host
    access = "sign-in required" if UserStore(users).exists() else "open to this machine only"
    err_console.print(f"{ready}dashboard on http://{shown}:{port}/ ({access}); Ctrl-C stops it",
                      highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=trust_proxy,
                # Only a proxy on this machine is believed about the client's address.
                forwarded_allow_ips="127.0.0.1" if trust_proxy else None)


@app.callback()
def web(
    ctx: typer.Context,
    bind: str = typer.Option(DEFAULT_BIND, "--bind", help="HOST:PORT to serve on."),
    trust_proxy: bool = typer.Option(False, "--trust-proxy", help="Behind a reverse proxy on "
                                     "this machine: believe its X-Forwarded-* headers (Secure "
                                     "cookies); needs users."),
) -> None:
    """Serve the dashboard (bound to 127.0.0.1 unless --bind says otherwise)."""
    if ctx.invoked_subcommand is not None:
        return
    load(ctx)  # a bad config is told here, with its file and line
    serve(options(ctx).config, bind, trust_proxy=trust_proxy)
