"""The audit trail of the dashboard: every action, who took it, when and how it ended, kept on
the environment's first host beside its release history (audit.jsonl), so every operator and
every dashboard sees the same trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..flows.lock import lock_host
from ..hosts import HostPool
from ..state import ABSENT, append_line, now_iso, read_records

AUDIT = "audit.jsonl"


@dataclass
class Entry:
    when: str
    user: str
    action: str
    params: dict[str, Any]
    result: str  # ok | failed
    exit_code: int
    run: str
    error: str | None = None

    def to_line(self) -> str:
        data = {k: v for k, v in vars(self).items() if v is not None}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def entry(user: str, action: str, params: dict[str, Any], exit_code: int, run: str,
          error: str | None) -> Entry:
    return Entry(now_iso(), user, action, params, "ok" if exit_code == 0 else "failed",
                 exit_code, run, error)


async def record(cfg: Config, pool: HostPool, env: str, e: Entry) -> None:
    _, host = lock_host(cfg, pool, env)
    await host.run(append_line(cfg.project, AUDIT, e.to_line()), timeout=30, check=True)


async def read(cfg: Config, pool: HostPool, env: str, last: int = 200) -> list[Entry]:
    _, host = lock_host(cfg, pool, env)
    res = await host.run(read_records(cfg.project, last, AUDIT), timeout=30)
    if res.exit_status == ABSENT or not res.ok:
        return []
    out = []
    for line in res.stdout.splitlines():
        try:
            d = json.loads(line)
            out.append(Entry(d["when"], d["user"], d["action"], d.get("params") or {},
                             d["result"], int(d.get("exit_code", 0)), d.get("run", ""),
                             d.get("error")))
        except (ValueError, KeyError, TypeError):
            continue  # a torn line must not hide the others
    return out
