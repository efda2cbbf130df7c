"""A bounded load client for the zero-downtime tests and benchmarks: keep-alive GETs, POSTs
with bodies, some long requests and a set of WebSocket clients, against one loopback address.

Every request is kept as a Sample (when it started, how long it took, the status, which app
version answered), so a test can ask what happened around each switch. A GET that fails
because the server closed a reused keep-alive connection before answering is sent again
once, as browsers and HTTP/1.1 (RFC 9110 9.2.2) allow for idempotent requests; such retries
are counted apart. A POST is never retried: its failure is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SLOW_SECONDS = 5


@dataclass
class Sample:
    kind: str  # get, post, slow
    started: float  # monotonic
    took: float
    status: int  # 0: no answer
    version: str  # X-App-Version, "" when none
    error: str = ""
    retried: bool = False

    @property
    def expected(self) -> float:
        """How long the request is meant to take by itself."""
        return SLOW_SECONDS if self.kind == "slow" else 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


@dataclass
class WsEvent:
    client: int
    at: float
    what: str  # open, frame, close
    version: str = ""
    code: int | None = None


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)
    ws: list[WsEvent] = field(default_factory=list)
    # The client's own stalls: (when, seconds its event loop woke up late). A stalled client
    # times requests out by itself; these tell that apart from a server that stalled.
    stalls: list[tuple[float, float]] = field(default_factory=list)

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    def versions(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            if since <= s.started < until and s.ok:
                out[s.version] = out.get(s.version, 0) + 1
        return out

    def late(self, slack: float = 1.0) -> list[Sample]:
        """Requests that took longer than their own duration + slack."""
        return [s for s in self.samples if s.took > s.expected + slack]

    def ws_gaps(self) -> list[tuple[int | None, float]]:
        """For each WebSocket close: its code and the seconds until that client's next
        frame on a new connection (inf: none came)."""
        out = []
        by_client: dict[int, list[WsEvent]] = {}
        for e in self.ws:
            by_client.setdefault(e.client, []).append(e)
        for events in by_client.values():
            for i, e in enumerate(events):
                if e.what != "close":
                    continue
                nxt = next((x for x in events[i + 1:] if x.what == "frame"), None)
                out.append((e.code, (nxt.at - e.at) if nxt else float("inf")))
        return out


    def summary(self) -> dict[str, object]:
        """The figures a test failure or a benchmark prints."""
        took = sorted(s.took for s in self.samples if s.kind != "slow") or [0.0]
        errors: dict[str, int] = {}
        for s in self.failed:
            key = s.error.split(":")[0] if s.error else f"HTTP {s.status}"
            errors[key] = errors.get(key, 0) + 1
        gaps = self.ws_gaps()
        codes: dict[str, int] = {}
        for code, _ in gaps:
            codes[str(code)] = codes.get(str(code), 0) + 1
        return {
            "requests": len(self.samples), "failed": len(self.failed), "errors": errors,
            "retried": sum(s.retried for s in self.samples), "versions": self.versions(),
            "p50_ms": round(took[len(took) // 2] * 1000, 1),
            "p99_ms": round(took[int(len(took) * 0.99)] * 1000, 1),
            "max_ms": round(took[-1] * 1000, 1), "late": len(self.late()),
            "ws_closes": codes,
            "ws_max_gap_s": round(max((g for _, g in gaps), default=0.0), 2),
            "client_max_stall_s": round(max((d for _, d in self.stalls), default=0.0), 2),
        }


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the load client sends traffic to loopback addresses only, not {host}")


class Load:
    """`rate` requests a second (1 in `slow_every` a long one, 1 in `post_every` a POST),
    plus `ws_clients` WebSockets, until stop() or `max_seconds`, whichever comes first."""

    CONNECTIONS = 64

    def __init__(self, base: str, *, rate: float = 200, ws_clients: int = 4,
                 slow_every: int = 100, post_every: int = 4, max_seconds: float = 600,
                 headers: dict[str, str] | None = None) -> None:
        _loopback(base)
        self.base = base.rstrip("/")
        self.rate = rate
        self.ws_clients = ws_clients
        self.slow_every = slow_every
        self.post_every = post_every
        self.max_seconds = max_seconds
        self.headers = headers or {}
        self.results = Results()
        self._stop = asyncio.Event()
        # At most one request per connection in flight: left to itself, httpx queues the
        # rest in its pool, whose scheduling grows with the square of the queue and stalls
        # the client for tens of seconds after any hiccup. A request waiting here still
        # counts the wait in its time (from when it was due).
        self._slots = asyncio.Semaphore(self.CONNECTIONS)
        self._body = b"x" * 4096

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> Results:
        limits = httpx.Limits(max_connections=self.CONNECTIONS,
                              max_keepalive_connections=self.CONNECTIONS)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=self.headers) as client:
            ws = [asyncio.create_task(self._websocket(i)) for i in range(self.ws_clients)]
            ws.append(asyncio.create_task(self._watch_loop()))
            inflight: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            n = 0
            while not self._stop.is_set() and time.monotonic() - start < self.max_seconds:
                task = asyncio.create_task(self._one(client, n))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                n += 1
                # Paced against the clock, so a slow answer never lowers the rate.
                wait = start + n / self.rate - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)
            self._stop.set()
            if inflight:
                await asyncio.wait(inflight, timeout=SLOW_SECONDS + 30)
            for t in ws:
                t.cancel()
            await asyncio.gather(*ws, return_exceptions=True)
        return self.results

    async def _watch_loop(self, tick: float = 0.05) -> None:
        while not self._stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(tick)
            late = time.monotonic() - before - tick
            if late > 0.25:
                self.results.stalls.append((before, late))

    async def _one(self, client: httpx.AsyncClient, n: int) -> None:
        if self.slow_every and n % self.slow_every == self.slow_every - 1:
            kind, method, path = "slow", "GET", f"/slow?s={SLOW_SECONDS}"
        elif self.post_every and n % self.post_every == 1:
            kind, method, path = "post", "POST", "/echo"
        else:
            kind, method, path = "get", "GET", "/"
        started = time.monotonic()
        async with self._slots:
            await self._send(client, kind, method, path, started)

    async def _send(self, client: httpx.AsyncClient, kind: str, method: str, path: str,
                    started: float) -> None:
        retried = False
        for attempt in (1, 2):
            try:
                r = await client.request(method, self.base + path,
                                         content=self._body if method == "POST" else None)
                self.results.samples.append(Sample(
                    kind, started, time.monotonic() - started, r.status_code,
                    r.headers.get("x-app-version", ""), retried=retried))
                return
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # The server closed a reused connection before answering: safe to send a GET
                # again; a POST may have been acted on, so it is not.
                if method == "GET" and attempt == 1:
                    retried = True
                    continue
                error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.results.samples.append(Sample(kind, started, time.monotonic() - started, 0, "",
                                               error=error, retried=retried))
            return

    async def _websocket(self, i: int) -> None:
        url = "ws" + self.base[len("http"):] + "/ws"
        while not self._stop.is_set():
            try:
                async with connect(url, open_timeout=5, close_timeout=2,
                                   additional_headers=self.headers) as sock:
                    self.results.ws.append(WsEvent(i, time.monotonic(), "open"))
                    code: int | None
                    try:
                        async for message in sock:
                            self.results.ws.append(WsEvent(i, time.monotonic(), "frame",
                                                           str(message)))
                        code = sock.close_code
                    except ConnectionClosed as exc:  # no close frame: 1006 by RFC 6455
                        code = exc.rcvd.code if exc.rcvd else 1006
                    self.results.ws.append(WsEvent(i, time.monotonic(), "close", code=code))
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                self.results.ws.append(WsEvent(i, time.monotonic(), "error", str(exc)))
                await asyncio.sleep(0.2)


async def split(base: str, count: int, *, concurrency: int = 24,
                headers: dict[str, str] | None = None, sticky: bool = False) -> dict[str, int]:
    """Which version answers `count` GETs: each a new visitor (no cookie kept) unless
    `sticky`, when one client keeps the cookies it is given, as a browser does."""
    _loopback(base)
    seen: dict[str, int] = {}
    left = count

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            try:
                r = await client.get(base.rstrip("/") + "/", headers=headers)
                key = r.headers.get("x-app-version", "") if r.status_code == 200 else \
                    f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            if not sticky:
                client.cookies.clear()
            seen[key] = seen.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    if sticky:
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await worker(client)
        return seen
    clients = [httpx.AsyncClient(timeout=30) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return seen
