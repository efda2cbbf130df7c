"""The dashboard's pages and actions. Every action is checked on the server: signed in, allowed
for the role on that environment, CSRF token and Origin, confirmation typed where the
environment asks for it. Reading works without JavaScript; htmx and app.js only refresh."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import StreamingResponse

from ..cli.common import log_dir
from ..config import Config, ConfigError, load_config
from ..errors import BadInput, FerrymanError, LockHeld
from ..events import Collector, EventBus
from ..hosts import open_pool
from ..redact import Redactor
from ..state import acting_user
from . import actions, auth, overview, pages, scheduler
from .runs import KEEPALIVE, Launcher, RunStore
from .runview import fold

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")
LOGIN_COOKIE = "ferryman_login"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
# The test client's own name counts as this machine: it is no network peer.
LOCAL_CLIENTS = {"127.0.0.1", "::1", "testclient"}


@dataclass
class Settings:
    config: Path
    users: Path
    loopback: bool = True  # bound to a loopback address
    trust_proxy: bool = False  # X-Forwarded-Proto/Host are the truth (behind a proxy)
    host_timeout: float = overview.HOST_TIMEOUT
    schedules: bool = True  # run the schedules of the config each minute (scheduler.py)


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class State:
    """What the app holds between requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = auth.UserStore(settings.users)
        self.sessions = auth.Sessions()
        self.limiter = auth.LoginLimiter()
        self._cfg: Config | None = None
        self._mtime = 0.0
        self._local_token: str | None = None
        cfg = self.config()
        self.runs = RunStore(log_dir(cfg))
        self.launcher = Launcher(self.runs.folder, self.config)
        self.runs.active = lambda: set(self.launcher.busy.values())

    def config(self) -> Config:
        """The config, read again when its file changed."""
        mtime = self.settings.config.stat().st_mtime
        if self._cfg is None or mtime != self._mtime:
            self._cfg = load_config(self.settings.config)
            self._mtime = mtime
        return self._cfg

    @property
    def open_access(self) -> bool:
        """No users file at all, a loopback bind, no proxy: the operator's own machine, as
        with the CLI. A users file left empty (its last user removed) means sign-in."""
        return (self.settings.loopback and not self.settings.trust_proxy
                and not self.settings.users.exists())

    def local_session(self) -> auth.Session:
        """Open access: one session for this machine's browser, not one per request."""
        found = self.sessions.get(self._local_token)
        if found is None:
            found = self.sessions.open(auth.User(pages.local_user(), auth.Role.ADMIN))
            self._local_token = found.token
        return found


def create_app(settings: Settings) -> FastAPI:
    state = State(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ticker = scheduler.start(state.config, state.launcher) if settings.schedules else None
        yield
        await scheduler.stop(ticker)
        await state.launcher.stop()

    app = FastAPI(title="ferryman", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.ferryman = state
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    pages.register_filters(templates.env)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        if state.open_access and not _from_this_machine(request):
            # Without users, only this machine's browser may talk to us: not a name that
            # rebinds to 127.0.0.1, not a proxy relaying the world.
            return PlainTextResponse("this dashboard answers on 127.0.0.1 only, to this "
                                     "machine, until users are added", 421)
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path != "/static" and not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def session(request: Request) -> auth.Session | None:
        found = state.sessions.get(request.cookies.get(auth.COOKIE))
        if found is not None and not state.open_access:
            # Users removed, given another role or a new password from the terminal: their
            # sessions end.
            now = state.store.get(found.user.name)
            if (now is None or now.role != found.user.role
                    or state.store.stamp(found.user.name) != found.stamp):
                state.sessions.close(found.token)
                found = None
        if found is not None:
            return found
        if state.open_access:
            return state.local_session()
        return None

    def secure(request: Request) -> bool:
        return auth.is_secure(request, trust_proxy=settings.trust_proxy)

    def render(request: Request, template: str, sess: auth.Session | None, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        try:
            cfg: Config | None = state.config()
            cfg_error = None
        except ConfigError as exc:
            cfg, cfg_error = None, str(exc)
        response = templates.TemplateResponse(request, template, {
            "session": sess, "cfg": cfg, "config_error": cfg_error,
            "open_access": state.open_access, "path": request.url.path, "status_code": status,
            **ctx,
        }, status_code=status)
        if sess is not None and request.cookies.get(auth.COOKIE) != sess.token:
            response.set_cookie(auth.COOKIE, sess.token, **auth.cookie_args(secure=secure(request)))
        return response

    def reader(request: Request) -> auth.Session:
        sess = session(request)
        if sess is None:
            raise Denied(401, "sign in first")
        return sess

    async def actor(request: Request) -> tuple[auth.Session, dict[str, str]]:
        """The checks of every POST, before its form is looked at."""
        sess = session(request)
        if sess is None:
            raise Denied(401, "sign in first")
        if not auth.origin_ok(request, trust_proxy=settings.trust_proxy):
            raise Denied(403, "the request did not come from this dashboard (Origin)")
        form = {k: str(v) for k, v in (await request.form()).multi_items()}
        if not auth.csrf_ok(sess, form.get("csrf")):
            raise Denied(403, "the form's security token is missing or stale: reload the page")
        return sess, form

    def allowed(sess: auth.Session, envs: list[str]) -> None:
        cfg = state.config()
        for env in envs:
            confirm_env = cfg.environments[env].policy.confirm if env in cfg.environments else False
            if not auth.may_act(sess.user.role, confirm_env=confirm_env):
                raise Denied(403, f"{sess.user.name} ({sess.user.role}) may not change {env}")

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if exc.status == 401 and request.method == "GET" and not _is_stream(request):
            return RedirectResponse(f"/login?next={request.url.path}", 303)
        pages.log_refusal(state, request, exc.status, str(exc))
        return render(request, "error.html", state.sessions.get(request.cookies.get(auth.COOKIE)),
                      status=exc.status, message=str(exc))

    @app.exception_handler(FerrymanError)
    async def ferryman_error(request: Request, exc: FerrymanError) -> Response:
        status = 409 if isinstance(exc, LockHeld) else 400 if isinstance(exc, BadInput) else 502
        return render(request, "error.html", session(request), status=status, message=str(exc),
                      hint=exc.hint)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> Response:
        return render(request, "error.html", session(request), status=500,
                      message=f"ferryman.yml: {exc}")

    # -- signing in -------------------------------------------------------------------------

    def login_form(request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
        # The sign-in form's token rides in a cookie of its own (double submit): there is no
        # session yet to hold it.
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = render(request, "login.html", None, status=status, login_csrf=token, **ctx)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                            path="/login", secure=secure(request))
        return response

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        if state.open_access:
            return RedirectResponse("/", 303)
        return login_form(request, next=_local_path(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not auth.origin_ok(request, trust_proxy=settings.trust_proxy):
            raise Denied(403, "the sign-in form did not come from this dashboard")
        form = {k: str(v) for k, v in (await request.form()).multi_items()}
        if not (form.get("csrf") and form.get("csrf") == request.cookies.get(LOGIN_COOKIE)):
            raise Denied(403, "the sign-in form did not come from this dashboard")
        name, client = form.get("name", ""), request.client.host if request.client else "?"
        wait = state.limiter.retry_after(client, name)
        if wait > 0:
            response = login_form(request, 429, next="/",
                                  error=f"too many failed sign-ins: try again in {wait:.0f}s")
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user = state.store.check(name, form.get("password", ""))
        if user is None:
            state.limiter.failed(client, name)
            pages.log_refusal(state, request, 401, f"failed sign-in as {name!r}")
            return login_form(request, 401, next=_local_path(form.get("next", "/")),
                              error="wrong name or password")
        state.limiter.succeeded(client, name)
        state.sessions.close(request.cookies.get(auth.COOKIE))  # the browser's old session
        sess = state.sessions.open(user)
        sess.stamp = state.store.stamp(user.name) or ""
        response = RedirectResponse(_local_path(form.get("next", "/")), 303)
        response.set_cookie(auth.COOKIE, sess.token, **auth.cookie_args(secure=secure(request)))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        sess, _ = await actor(request)
        state.sessions.close(sess.token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    # -- reading ----------------------------------------------------------------------------

    async def read_overview() -> overview.Overview:
        cfg = state.config()
        async with open_pool(cfg) as pool:
            return await overview.read(cfg, pool, settings.host_timeout)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        sess = reader(request)
        return render(request, "overview.html", sess, ov=await read_overview(),
                      runs=state.runs.summaries(8), busy=state.launcher.busy)

    @app.get("/fragments/overview", response_class=HTMLResponse)
    async def overview_fragment(request: Request) -> Response:
        sess = reader(request)
        return render(request, "_overview.html", sess, ov=await read_overview(),
                      runs=state.runs.summaries(8), busy=state.launcher.busy)

    @app.get("/runs", response_class=HTMLResponse)
    async def runs(request: Request) -> Response:
        sess = reader(request)
        return render(request, "runs.html", sess, runs=state.runs.summaries(100))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run_page(request: Request, run_id: str) -> Response:
        sess = reader(request)
        view = state.runs.view(run_id)
        return render(request, "run.html", sess, run=view, chart=pages.run_timeline(view))

    @app.get("/runs/{run_id}/log", response_class=PlainTextResponse)
    async def run_log(request: Request, run_id: str) -> Response:
        reader(request)
        text = state.runs.path(run_id).with_suffix(".log")
        return PlainTextResponse(text.read_text(encoding="utf-8", errors="replace")
                                 if text.exists() else "")

    @app.get("/runs/{run_id}/events")
    async def run_events(request: Request, run_id: str, start: int = 0) -> Response:
        reader(request)
        state.runs.path(run_id)
        last = request.headers.get("last-event-id")
        if last and last.isdigit():
            start = int(last)
        part = templates.env.get_template("_run_parts.html")

        async def stream() -> AsyncIterator[str]:
            follow = state.runs.follow(run_id, start)
            pending: set[str] = set()
            last_n = start
            step: asyncio.Future[Any] | None = None
            try:
                while True:
                    # One pending read across keepalives: a timeout must not cancel it (that
                    # would end the generator).
                    step = step or asyncio.ensure_future(anext(follow))
                    done, _ = await asyncio.wait({step}, timeout=KEEPALIVE)
                    if not done:
                        yield ": keepalive\n\n"
                        if await request.is_disconnected():
                            return
                        continue
                    try:
                        n, view, changed = step.result()
                    except StopAsyncIteration:
                        return
                    step = None
                    pending |= changed
                    last_n = n
                    if pending:
                        html = pages.render_parts(part, view, pending)
                        event = "end" if "end" in changed else "parts"
                        payload = json.dumps({"parts": html, "status": view.status})
                        yield f"id: {last_n}\nevent: {event}\ndata: {payload}\n\n"
                        pending = set()
                        if event == "end":
                            return
                    if await request.is_disconnected():
                        return
            finally:
                if step is not None and not step.done():
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                await follow.aclose()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    # -- planning and acting ------------------------------------------------------------------

    async def plan_of(action: actions.Action, user: str) -> list[Any]:
        if action.plan is None:
            return []
        cfg = state.config()
        bus = EventBus(action.flow, Redactor(cfg.secrets))
        seen = Collector()
        bus.add(seen)
        said = acting_user.set(user)  # the plan shows the lock owner the run will be
        try:
            async with open_pool(cfg) as pool:
                await action.plan(cfg, pool, bus)
        finally:
            acting_user.reset(said)
        return [{"event": e.kind, **e.data} for e in seen.events]

    def build(name: str, q: dict[str, Any]) -> actions.Action:
        cfg = state.config()
        if name == "release":
            return actions.release(cfg, q.get("from", ""), q.get("to", ""), q.get("services", []))
        if name == "rollback":
            return actions.rollback(cfg, q.get("env", ""), q.get("to") or None)
        if name == "backup":
            return actions.backup(cfg, q.get("env", ""))
        if name == "restore":
            return actions.restore(cfg, q.get("env", ""), q.get("id", ""))
        if name == "sync-data":
            return actions.sync(cfg, q.get("from", ""), q.get("to", ""))
        if name in ("verify", "drill"):
            return actions.verify(cfg, q.get("env", ""), q.get("id", ""), name == "drill")
        if name == "doctor-fix":
            return actions.doctor_fix(cfg, q.get("env", ""))
        raise BadInput(f"unknown action '{name}'")

    def query(request: Request) -> dict[str, Any]:
        q: dict[str, Any] = dict(request.query_params)
        q["services"] = request.query_params.getlist("services")
        return q

    @app.get("/release", response_class=HTMLResponse)
    async def release_form(request: Request) -> Response:
        sess = reader(request)
        q = query(request)
        return render(request, "release.html", sess, src=q.get("from", ""), dst=q.get("to", ""),
                      chosen=q["services"])

    @app.get("/plan/{name}", response_class=HTMLResponse)
    async def plan_page(request: Request, name: str) -> Response:
        sess = reader(request)
        q = query(request)
        action = build(name, q)
        events = await plan_of(action, sess.user.name)
        cfg = state.config()
        confirm = [e for e in action.envs if cfg.environments[e].policy.confirm and action.asks]
        may = all(auth.may_act(sess.user.role, confirm_env=cfg.environments[e].policy.confirm)
                  for e in action.envs)
        return render(request, "plan.html", sess, action=action, name=name,
                      plan=fold("plan", events), fields=pages.form_fields(q),
                      confirm_envs=confirm, may=may, busy=[e for e in action.envs
                                                           if e in state.launcher.busy])

    @app.post("/act/{name}")
    async def act(request: Request, name: str) -> Response:
        sess, form = await actor(request)
        q: dict[str, Any] = dict(form)
        q["services"] = (await request.form()).getlist("services")
        action = build(name, q)
        allowed(sess, action.envs)
        cfg = state.config()
        typed = {t.strip() for t in (await request.form()).getlist("confirm")
                 if isinstance(t, str)}
        for env in action.envs if action.asks else []:
            if cfg.environments[env].policy.confirm and env not in typed:
                raise BadInput(f"{env} asks for confirmation: type its name to go ahead")
        run_id = state.launcher.start(action.flow, action.envs, sess.user.name, action.params,
                                      action.job)
        return RedirectResponse(f"/runs/{run_id}", 303)

    pages.register(app, state, render, reader, allowed)
    return app


PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
                 "x-real-ip")


def _from_this_machine(request: Request) -> bool:
    client = request.client.host if request.client else ""
    return (request.url.hostname in LOCAL_HOSTS and client in LOCAL_CLIENTS
            and not any(h in request.headers for h in PROXY_HEADERS))


def _is_stream(request: Request) -> bool:
    return request.url.path.endswith("/events") or request.url.path.endswith("/stream")


def _local_path(path: str) -> str:
    """Only a path of this site after signing in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"
