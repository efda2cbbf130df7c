"""What the overview shows, read from every host at once, each under a deadline: a slow or
lost host is shown as unreachable, never waited on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..config import Config
from ..data import archive as ar
from ..flows import data as data_flow
from ..flows import history as hist
from ..flows import lock as lock_flow
from ..flows import status as status_flow
from ..flows.check import HostCheck, check_host
from ..hosts import HostPool, by_host
from ..locking import LockOwner
from ..record import Record

T = TypeVar("T")
HOST_TIMEOUT = 8.0  # seconds a host has to answer the overview


@dataclass
class Cell:
    """One service on one environment: every host it runs on."""

    statuses: list[status_flow.ServiceStatus] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return not any(s.facts for s in self.statuses)

    @property
    def image_ids(self) -> frozenset[str]:
        return frozenset(s.facts.image_id for s in self.statuses if s.facts)


@dataclass
class Row:
    service: str
    cells: dict[str, Cell]

    @property
    def drift(self) -> str:
        """same | differs | missing (absent somewhere it should run)."""
        if any(c.missing for c in self.cells.values()):
            return "missing"
        return "same" if len({c.image_ids for c in self.cells.values()}) <= 1 else "differs"


@dataclass
class EnvSummary:
    name: str
    confirm: bool
    allowed_tags: list[str]
    hosts: list[HostCheck] = field(default_factory=list)
    last: Record | None = None
    history_error: str | None = None
    lock: LockOwner | None = None
    backup: ar.Manifest | None = None  # the newest verified backup
    backup_check: dict[str, Any] | None = None
    backups: int = 0
    data_error: str | None = None


@dataclass
class Overview:
    envs: list[EnvSummary]
    rows: list[Row]
    read_at: float
    seconds: float


async def _within(job: Awaitable[T], timeout: float) -> T:
    return await asyncio.wait_for(job, timeout)


async def _statuses(pool: HostPool, env: str, timeout: float) -> list[status_flow.ServiceStatus]:
    await pool.resolve(env)
    out: list[status_flow.ServiceStatus] = []

    async def one(host: str, places: list[Any]) -> list[status_flow.ServiceStatus]:
        try:
            return await _within(status_flow.read_host(pool, env, host, places), timeout)
        except TimeoutError:
            return [status_flow.ServiceStatus(p, error=f"no answer in {timeout:g}s")
                    for p in places]

    groups = list(by_host(pool.placements(env)))
    for part in await asyncio.gather(*(one(h, ps) for (_, h), ps in groups)):
        out.extend(part)
    return out


async def _host(pool: HostPool, env: str, label: str, timeout: float) -> HostCheck:
    try:
        return await _within(check_host(pool, env, label), timeout)
    except TimeoutError:
        return HostCheck(env, label, error=f"no answer in {timeout:g}s")


async def _env(cfg: Config, pool: HostPool, name: str, timeout: float) -> EnvSummary:
    env = cfg.environments[name]
    out = EnvSummary(name, env.policy.confirm, list(env.policy.allowed_tags))
    out.hosts = list(await asyncio.gather(*(_host(pool, name, h.label, timeout)
                                            for h in env.hosts)))
    if not out.hosts[0].ssh_ok:  # history, lock and data live on the first host
        out.history_error = out.data_error = "first host unreachable"
        return out

    async def history() -> None:
        try:
            found = await _within(hist.read_history(cfg, pool, name), timeout)
            out.last = found.records[-1] if found.records else None
        except Exception as exc:
            out.history_error = str(exc)

    async def lock() -> None:
        try:
            out.lock = await _within(lock_flow.holder(cfg, pool, name), timeout)
        except Exception:
            out.lock = None

    async def backups() -> None:
        if cfg.data is None:
            return
        try:
            s = data_flow.site(cfg, pool, name)
            found, checks = await _within(
                asyncio.gather(data_flow.list_backups(s), data_flow.read_checks(s)), timeout)
            out.backups = len(found)
            proven = [m for m in found if (checks.get(m.id) or {}).get("ok") is True]
            if proven:
                out.backup = max(proven, key=lambda m: m.created)
                out.backup_check = checks[out.backup.id]
        except Exception as exc:
            out.data_error = str(exc)

    await asyncio.gather(history(), lock(), backups())
    return out


async def read(cfg: Config, pool: HostPool, timeout: float = HOST_TIMEOUT) -> Overview:
    t0 = time.monotonic()
    pool.read_timeout = timeout
    names = list(cfg.environments)
    summaries, per_env = await asyncio.gather(
        asyncio.gather(*(_env(cfg, pool, n, timeout) for n in names)),
        asyncio.gather(*(_statuses(pool, n, timeout) for n in names)),
    )
    statuses = [s for part in per_env for s in part]
    rows = []
    for service in cfg.services:
        cells = {n: Cell([s for s in statuses if s.place.env == n and s.place.service == service])
                 for n in names}
        rows.append(Row(service, cells))
    return Overview(list(summaries), rows, time.time(), time.monotonic() - t0)


def age(iso: str, now: datetime | None = None) -> str:
    """'3h' for an ISO time with a zone (records, manifests)."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    secs = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"
