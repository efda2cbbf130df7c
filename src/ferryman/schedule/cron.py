"""Cron times: the five fields of crontab(5) (minute hour day-of-month month day-of-week),
read here so a schedule means on every operator's machine what it means to cron. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_NAMES = {
    3: {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                        "sep", "oct", "nov", "dec"))},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
           "@annually": "0 0 1 1 *"}
LOOK_BACK = timedelta(days=400)  # a time that fires less often than yearly is refused


class CronError(ValueError):
    pass


def _number(text: str, index: int) -> int:
    name = text.lower()
    if name in _NAMES.get(index, {}):
        return _NAMES[index][name]
    if not text.isdigit():
        raise CronError(f"{_FIELDS[index][0]}: {text!r} is not a number")
    return int(text)


def _field(text: str, index: int) -> frozenset[int]:
    label, low, high = _FIELDS[index]
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronError(f"{label}: {part!r} has a bad step")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _number(a, index), _number(b, index)
        else:
            first = _number(body, index)
            last = high if step else first
        if not (low <= first <= high and low <= last <= high and first <= last):
            raise CronError(f"{label}: {part!r} is outside {low}-{high}")
        out.update(range(first, last + 1, step or 1))
    if index == 4 and 7 in out:  # 0 and 7 are both Sunday
        out = (out - {7}) | {0}
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def day_matches(self, t: datetime) -> bool:
        # crontab(5): when both day fields are restricted, either one matching is enough.
        dom, dow = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def matches(self, t: datetime) -> bool:
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and self.day_matches(t))

    def last_fire(self, now: datetime) -> datetime:
        """The latest minute at or before `now` this time fires."""
        t = now.replace(second=0, microsecond=0)
        stop = t - LOOK_BACK
        while t > stop:
            if t.month not in self.months or not self.day_matches(t):
                t = t.replace(hour=23, minute=59) - timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=59) - timedelta(hours=1)
            elif t.minute not in self.minutes:
                t -= timedelta(minutes=1)
            else:
                return t
        raise CronError(f"{self.text!r} does not fire within {LOOK_BACK.days} days")

    def fires_between(self, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
        """Fire times t with after < t <= until, newest first, at most `limit`."""
        out: list[datetime] = []
        t = until
        while len(out) < limit:
            try:
                t = self.last_fire(t)
            except CronError:
                break
            if t <= after:
                break
            out.append(t)
            t -= timedelta(minutes=1)
        return out


def parse(text: str) -> Cron:
    spec = _MACROS.get(text.strip().lower(), text)
    parts = spec.split()
    if len(parts) != 5:
        raise CronError(f"{text!r} has {len(parts)} fields; a cron time has 5 "
                        "(minute hour day-of-month month day-of-week), or @daily, @weekly...")
    sets = [_field(p, i) for i, p in enumerate(parts)]
    return Cron(text, *sets, any_day=parts[2] == "*", any_weekday=parts[4] == "*")
