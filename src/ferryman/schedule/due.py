"""Which scheduled jobs are due, from their cron times and the runs recorded on the hosts.

Each run of a job is one JSON line in schedules.jsonl in the environment's state folder
(state.py): the fire time it ran for (`due`), when, who, the result and what it said. A run
that ended (ok or failed) settles its fire time; one skipped (the environment was locked)
does not, so the next pass takes it. Pure."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal

from . import cron

FILE = "schedules.jsonl"
Result = Literal["ok", "failed", "skipped"]
SETTLED = ("ok", "failed")


@dataclass
class Run:
    env: str
    job: str  # backup | verify | drill
    due: str  # the fire time this run was for (UTC, ISO)
    started: str
    result: Result
    ended: str = ""
    id: str = ""  # the backup made or checked
    missed: int = 0  # fire times passed over since the previous run
    said: str = ""
    who: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def parse_runs(stdout: str) -> list[Run]:
    out = []
    for line in stdout.splitlines():
        try:
            data = json.loads(line)
            out.append(Run(**{k: v for k, v in data.items() if k in Run.__dataclass_fields__}))
        except (ValueError, TypeError):
            continue
    return out


def last_settled(runs: list[Run], env: str, job: str) -> datetime | None:
    """The latest fire time a run of (env, job) settled."""
    times = [_parse(r.due) for r in runs if r.env == env and r.job == job
             and r.result in SETTLED]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _parse(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class Due:
    env: str
    job: str
    when: str  # the cron time
    due: datetime  # its latest fire time at or before now
    run: bool  # not settled yet
    missed: list[datetime] = field(default_factory=list)  # fire times passed over, newest first
    last: datetime | None = None  # the fire time last settled
    first: bool = False  # never ran before

    def describe(self) -> str:
        if not self.run:
            return f"{self.env} {self.job}: done for {self.due:%Y-%m-%d %H:%M} UTC"
        why = "never ran" if self.first else f"due {self.due:%Y-%m-%d %H:%M} UTC"
        return f"{self.env} {self.job}: {why}"

    def missed_text(self) -> str:
        if not self.missed:
            return ""
        oldest = self.missed[-1]
        more = "+" if len(self.missed) >= MISSED_LIMIT else ""
        return (f"{self.env} {self.job}: missed {len(self.missed)}{more} run(s) since "
                f"{oldest:%Y-%m-%d %H:%M} UTC (last ran for "
                f"{self.last:%Y-%m-%d %H:%M} UTC); running once now")


MISSED_LIMIT = 1000


def due(env: str, job: str, when: str, runs: list[Run], now: datetime) -> Due:
    """Is (env, job) due at `now`? A job that never ran is due at once; one whose pass
    came late runs once, and the fire times passed over are reported as missed."""
    c = cron.parse(when)
    latest = c.last_fire(now.astimezone(UTC))
    last = last_settled(runs, env, job)
    if last is None:
        return Due(env, job, when, latest, True, first=True)
    if last >= latest:
        return Due(env, job, when, latest, False, last=last)
    missed = c.fires_between(last, latest, MISSED_LIMIT + 1)[1:]
    return Due(env, job, when, latest, True, missed=missed, last=last)


def already_settled(runs: list[Run], env: str, job: str, fire: datetime) -> bool:
    """Another pass settled this fire time (or a later one) meanwhile."""
    last = last_settled(runs, env, job)
    return last is not None and last >= fire
