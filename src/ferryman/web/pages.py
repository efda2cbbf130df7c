"""The reading pages besides the overview and the runs (History, Data, Doctor, Logs), and what
the templates share: filters, the run page's live parts, the refusals log."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, Template
from starlette.responses import StreamingResponse

from ..checks import examine
from ..checks.findings import SEVERITY
from ..config import Config
from ..data import archive as ar
from ..errors import BadInput
from ..flows import data as data_flow
from ..flows import history as hist
from ..flows import logs as logs_flow
from ..hosts import Placement, open_pool
from ..units import human_bytes
from . import audit, charts
from .overview import age
from .runview import RunView

if TYPE_CHECKING:
    from .app import State


def local_user() -> str:
    try:
        return getpass.getuser()
    except OSError:
        return "local"


def log_refusal(state: State, request: Request, status: int, message: str) -> None:
    """Refused requests change nothing on a server; they are kept on this machine."""
    folder = state.runs.folder
    folder.mkdir(parents=True, exist_ok=True)
    line = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "client": request.client.host if request.client else "?",
            "method": request.method, "path": request.url.path[:200], "status": status,
            "message": message[:300], "machine": socket.gethostname()}
    with (folder / "web-refused.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S") if ts else ""


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m{int(value % 60):02d}s"


def _iso(text: str | None) -> str:
    return (text or "").replace("T", " ")[:19]


def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
                    for k, v in params.items())


def _worst_first(findings: list[Any]) -> list[Any]:
    """Doctor findings with the failures on top, each check's own order kept."""
    return sorted(findings, key=lambda f: -SEVERITY[f.status])


def register_filters(env: Environment) -> None:
    env.filters.update(bytes=human_bytes, seconds=_seconds, clock=_when, iso=_iso, age=age,
                       params=_params, worst_first=_worst_first)


def form_fields(q: dict[str, Any]) -> list[tuple[str, str]]:
    """The plan page hands its query on to the form that acts on it."""
    out: list[tuple[str, str]] = []
    for key, value in q.items():
        if key == "services":
            out.extend(("services", v) for v in value)
        elif key not in ("csrf", "confirm"):
            out.append((key, str(value)))
    return out


def run_timeline(view: RunView) -> Any:
    start = view.started or 0.0
    spans = []
    for s in view.steps.values():
        if s.started is None:
            continue
        status = {"undo-failed": "failed", "planned": "planned"}.get(s.status, s.status)
        spans.append(charts.Span(f"{s.n}/{s.m} {s.name}", s.started - start, s.duration,
                                 status))
    now = (view.ended or time.time()) - start if view.started else None
    return charts.timeline(spans, total=now)


def render_parts(template: Template, view: RunView, parts: set[str]) -> dict[str, str]:
    """DOM id -> its new HTML, for the parts of the run page a line changed."""
    module = template.make_module({"run": view})
    out: dict[str, str] = {}
    if parts & {"head", "end", "steps"}:
        out["run-head"] = str(module.head(view))  # type: ignore[attr-defined]
        out["run-timeline"] = str(module.timeline(run_timeline(view)))  # type: ignore[attr-defined]
    if "steps" in parts or "end" in parts:
        out["steps"] = str(module.steps(view))  # type: ignore[attr-defined]
    else:
        for s in view.steps.values():
            if s.dom_id in parts:
                out[s.dom_id] = str(module.step(s))  # type: ignore[attr-defined]
    if parts & {"undos", "end"}:
        out["undos"] = str(module.undos(view))  # type: ignore[attr-defined]
    if parts & {"notes", "end"}:
        out["notes"] = str(module.notes(view))  # type: ignore[attr-defined]
    return out


def _env_arg(cfg: Config, env: str | None) -> str:
    if not env:
        return next(iter(cfg.environments))
    if env not in cfg.environments:
        raise BadInput(f"unknown environment '{env}' (ferryman.yml has: "
                       f"{', '.join(cfg.environments)})")
    return env


def _parsed(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:  # a record from elsewhere with a time we cannot read: left out
        return None


def _release_points(records: list[Any]) -> list[charts.ReleasePoint]:
    return [charts.ReleasePoint(when, r.duration, r.result, r.kind, r.id, f"#{r.id}")
            for r in records if (when := _parsed(r.when))]


def _backup_points(found: list[ar.Manifest], checks: dict[str, dict[str, Any]]
                   ) -> list[charts.BackupPoint]:
    out = []
    for m in found:
        if (when := _parsed(m.created)) is None:
            continue
        c = checks.get(m.id)
        verified = None if c is None else bool(c.get("ok"))
        out.append(charts.BackupPoint(when, m.total_bytes, verified, m.id, f"#{m.id}"))
    return out


def register(app: FastAPI, state: State, render: Callable[..., HTMLResponse],
             reader: Callable[[Request], Any], allowed: Callable[[Any, list[str]], None]) -> None:

    def reading(request: Request, env: str | None) -> tuple[Any, Config, str]:
        """A reading page's session, config and environment (the first one by default)."""
        sess = reader(request)
        cfg = state.config()
        return sess, cfg, _env_arg(cfg, env)

    @app.get("/history", response_class=HTMLResponse)
    async def history(request: Request, env: str | None = None) -> Response:
        sess, cfg, env = reading(request, env)
        async with open_pool(cfg) as pool:
            found, trail = await asyncio.gather(hist.read_history(cfg, pool, env),
                                                audit.read(cfg, pool, env))
        records = list(reversed(found.records))
        return render(request, "history.html", sess, env=env, records=records,
                      unreadable=found.unreadable, trail=list(reversed(trail)),
                      chart=charts.release_chart(_release_points(found.records)))

    @app.get("/data", response_class=HTMLResponse)
    async def data(request: Request, env: str | None = None) -> Response:
        sess, cfg, env = reading(request, env)
        backups: list[ar.Manifest] = []
        checks: dict[str, dict[str, Any]] = {}
        if cfg.data is not None:
            async with open_pool(cfg) as pool:
                s = data_flow.site(cfg, pool, env)
                backups, checks = await asyncio.gather(data_flow.list_backups(s),
                                                       data_flow.read_checks(s))
        return render(request, "data.html", sess, env=env, backups=list(reversed(backups)),
                      checks=checks, chart=charts.backup_chart(_backup_points(backups, checks)))

    @app.get("/data/{env}/{bid}/download")
    async def download(request: Request, env: str, bid: str) -> Response:
        # Data leaves the server: the same permission as changing that environment.
        sess = reader(request)
        allowed(sess, [env])
        cfg = state.config()
        env = _env_arg(cfg, env)
        if not ar.ID_PATTERN.fullmatch(bid):
            raise BadInput(f"'{bid}' is not a backup id")
        async with open_pool(cfg) as pool:  # a missing backup is a 400 page, not a cut file
            await data_flow.read_manifest(data_flow.site(cfg, pool, env), bid)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{cfg.project}-{env}-{bid}.tar")

        async def body() -> AsyncIterator[bytes]:
            # The stream's own connection opens and closes with the body itself, so a client
            # that goes away early leaves nothing open.
            code = 1
            async with open_pool(cfg) as pool:
                s = data_flow.site(cfg, pool, env)
                try:
                    proc = await s.host.open(["tar", "-C", s.folder(bid), "-cf", "-", "."])
                    while chunk := await proc.read(1 << 20):
                        yield chunk
                    code = (await proc.wait()).exit_status
                finally:
                    # Data left the server: that is an action, audited like the others.
                    with contextlib.suppress(Exception):
                        await audit.record(cfg, pool, env, audit.entry(
                            sess.user.name, "download", {"env": env, "id": bid}, code, "",
                            None))

        return StreamingResponse(body(), media_type="application/x-tar", headers={
            "Content-Disposition": f'attachment; filename="{safe}"'})

    @app.get("/doctor", response_class=HTMLResponse)
    async def doctor(request: Request, env: str | None = None) -> Response:
        sess, cfg, env = reading(request, env)
        async with open_pool(cfg) as pool:
            report = await examine(cfg, pool, [env])
        return render(request, "doctor.html", sess, env=env, report=report)

    @app.get("/logs", response_class=HTMLResponse)
    async def logs(request: Request, env: str | None = None, service: str | None = None,
                   tail: int = 200) -> Response:
        sess, cfg, env = reading(request, env)
        service = service or next(iter(cfg.services))
        if service not in cfg.services:
            raise BadInput(f"unknown service '{service}' (ferryman.yml has: "
                           f"{', '.join(cfg.services)})")
        tail = max(1, min(tail, 5000))
        lines: list[tuple[str, str, str]] = []

        def keep(p: Placement, stream: str, line: str) -> None:
            lines.append((p.host, stream, line))

        async with open_pool(cfg) as pool:
            code = await logs_flow.logs(pool, env, service, tail, False, keep)
        return render(request, "logs.html", sess, env=env, service=service, tail=tail,
                      lines=lines, code=code)

    @app.get("/logs/stream")
    async def logs_stream(request: Request, env: str, service: str) -> Response:
        reader(request)
        cfg = state.config()
        env = _env_arg(cfg, env)
        if service not in cfg.services:
            raise BadInput(f"unknown service '{service}'")
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=10000)

        def keep(p: Placement, stream: str, line: str) -> None:
            if not queue.full():
                queue.put_nowait(json.dumps({"host": p.host, "stream": stream, "line": line}))

        async def follow() -> None:
            try:
                async with open_pool(cfg) as pool:
                    await logs_flow.logs(pool, env, service, 0, True, keep)
            finally:
                await queue.put(None)

        async def stream() -> AsyncIterator[str]:
            task = asyncio.create_task(follow())
            try:
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keepalive\n\n"
                        continue
                    if item is None:
                        yield "event: end\ndata: {}\n\n"
                        return
                    yield f"data: {item}\n\n"
            finally:
                task.cancel()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})
