"""Small SVG charts rendered on the server: release durations, backup sizes, a flow's steps.

The SVG is inlined in pages served with `default-src 'self'`, so it carries no `style`
attribute, `<style>` or `<script>`: looks come from classes defined in static/charts.css, all
prefixed `fc-` so they cannot clash with the page's own. Failed and aborted bars differ from ok
ones by shape too (hollow, crossed, dashed), not by colour alone. Every name and value is
escaped: ids and step names come from servers and configs. Output depends only on the input,
so the same data renders the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from .. import units

MAX_RELEASES = 50
ROW_HEIGHT = 18

_RESULTS = ("ok", "failed", "aborted")
_KINDS = ("release", "rollback")
_STATUSES = ("ok", "failed", "undone", "running", "planned")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Characters XML 1.0 refuses even as references; a server's output may carry them (ANSI codes).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_CHAR_WIDTH = 6.2  # average glyph width at the 11 px the charts use, to size the label column


@dataclass(frozen=True)
class ReleasePoint:
    when: datetime  # timezone-aware
    duration: float  # seconds
    result: str  # "ok" | "failed" | "aborted"
    kind: str  # "release" | "rollback"
    id: str  # release id, shown in the tooltip
    href: str | None = None  # link target for the bar, e.g. "#r2026..."


@dataclass(frozen=True)
class BackupPoint:
    when: datetime
    bytes: int
    verified: bool | None  # True verified ok, False verification failed, None never verified
    id: str
    href: str | None = None


@dataclass(frozen=True)
class Span:
    name: str  # step name, e.g. "3/8 transfer images"
    start: float  # seconds since the run started
    duration: float | None  # None while running
    status: str  # "ok" | "failed" | "undone" | "running" | "planned"


# --- text and numbers ---------------------------------------------------------------------


def _e(value: object) -> str:
    return str(escape(_NOT_XML.sub("", str(value))))


def _n(x: float) -> str:
    """Coordinates with one decimal at most: short, and stable across platforms."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _finite(x: float | None) -> float:
    """Negative, NaN or infinite values (a clock step, a bad record) draw as zero."""
    if x is None or not math.isfinite(x) or x < 0:
        return 0.0
    return float(x)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human_duration(seconds: float) -> str:
    s = _finite(seconds)
    if s < 10:
        return f"{_num(round(s, 1))} s"
    r = round(s)
    if r < 60:
        return f"{r} s"
    if r < 3600:
        m, sec = divmod(r, 60)
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, rest = divmod(r, 3600)
    m = rest // 60
    return f"{h} h {m} min" if m else f"{h} h"


def human_bytes(n: int) -> str:
    """1024-based with one decimal, like the CLI's sizes."""
    return units.human_bytes(_finite(n))


def _stamp(when: datetime) -> str:
    zone = when.tzname() or ""
    return f"{when:%Y-%m-%d %H:%M} {zone}".rstrip()


def _aware(when: datetime) -> datetime:
    # Naive datetimes would make sorting raise next to aware ones; read them as UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --- axes ---------------------------------------------------------------------------------


def _nice(top: float, most: int = 3) -> list[float]:
    """0 and up to `most` evenly spaced round values, the last at or above `top`."""
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    mag = 10 ** math.floor(math.log10(top / most))
    step = 10 * mag
    for m in (1, 2, 2.5, 5, 10):
        if math.ceil(top / (m * mag) - 1e-9) <= most:
            step = m * mag
            break
    count = max(1, math.ceil(top / step - 1e-9))
    return [round(i * step, 9) for i in range(count + 1)]


def _duration_ticks(top: float, most: int = 3) -> list[tuple[float, str]]:
    """(seconds, label) in the unit that keeps the labels short: s, min or h."""
    size, unit = 1, "s"
    if top >= 2 * 3600:
        size, unit = 3600, "h"
    elif top >= 120:
        size, unit = 60, "min"
    return [(v * size, f"{_num(v)} {unit}" if v else "0") for v in _nice(top / size, most)]


def _byte_ticks(top: float) -> list[tuple[float, str]]:
    size, unit = 1, "B"
    for bigger in ("KB", "MB", "GB", "TB"):
        if top < size * 1024:
            break
        size, unit = size * 1024, bigger
    return [(v * size, f"{_num(v)} {unit}" if v else "0") for v in _nice(top / size)]


def _date_format(whens: Sequence[datetime]) -> str:
    if all(w.date() == whens[0].date() for w in whens):
        return "time"
    return "year" if (whens[-1] - whens[0]).days > 300 else "day"


def _date_label(when: datetime, fmt: str) -> str:
    if fmt == "time":
        return f"{when:%H:%M}"
    if fmt == "year":
        return f"{_MONTHS[when.month - 1]} {when.year}"
    return f"{when.day} {_MONTHS[when.month - 1]}"


# --- svg pieces ---------------------------------------------------------------------------


def _uid(kind: str, given: str | None, payload: object) -> str:
    """Ids for aria-labelledby: unique per chart on a page, yet stable for the same data."""
    if given:
        clean = re.sub(r"[^A-Za-z0-9_-]", "", given)
        if clean:
            return clean if clean[0].isalpha() else f"fc-{clean}"
    digest = hashlib.sha1(repr(payload).encode("utf-8", "replace")).hexdigest()[:10]
    return f"fc-{kind}-{digest}"


def _svg(kind: str, uid: str, width: int, height: float, title: str, desc: str,
         body: Iterable[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fc-chart fc-{kind}" role="img" '
        f'width="100%" viewBox="0 0 {width} {_n(height)}" preserveAspectRatio="xMidYMid meet" '
        f'font-size="11" aria-labelledby="{uid}-t" aria-describedby="{uid}-d">'
        f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _empty(kind: str, uid: str, width: int, title: str, message: str) -> Markup:
    text = (f'<text class="fc-empty" x="{_n(width / 2)}" y="24" '
            f'text-anchor="middle">{_e(message)}</text>')
    return _svg(kind, uid, width, 40, title, message, [text])


def _safe_href(href: str | None) -> str | None:
    """Links to pages only: a `javascript:` or `data:` target from a bad record is dropped.
    Browsers ignore tabs, newlines and leading spaces in URLs, so the check does too."""
    if not href:
        return None
    m = _SCHEME.match(re.sub(r"[\x00-\x20]", "", href))
    if m and m.group(1).lower() not in ("http", "https"):
        return None
    return href


def _cross(cx: float, cy: float, r: float) -> str:
    return (f'<path class="fc-mark fc-mark-failed" d="M{_n(cx - r)} {_n(cy - r)}'
            f'L{_n(cx + r)} {_n(cy + r)}M{_n(cx - r)} {_n(cy + r)}L{_n(cx + r)} {_n(cy - r)}"/>')


def _diamond(cx: float, cy: float, r: float, cls: str) -> str:
    return (f'<path class="fc-mark {cls}" d="M{_n(cx)} {_n(cy - r)}L{_n(cx + r)} {_n(cy)}'
            f'L{_n(cx)} {_n(cy + r)}L{_n(cx - r)} {_n(cy)}Z"/>')


def _check(cx: float, cy: float, r: float) -> str:
    return (f'<path class="fc-mark fc-mark-verified" d="M{_n(cx - r)} {_n(cy)}'
            f'L{_n(cx - r / 3)} {_n(cy + r * 0.7)}L{_n(cx + r)} {_n(cy - r * 0.8)}"/>')


def _ring(cx: float, cy: float, r: float) -> str:
    return (f'<circle class="fc-mark fc-mark-unverified" cx="{_n(cx)}" cy="{_n(cy)}" '
            f'r="{_n(r * 0.8)}"/>')


def _legend(items: Sequence[tuple[str, str, str]], x: float, y: float) -> list[str]:
    """A row of (swatch classes, mark, label), drawn only for what the chart shows."""
    out = ['<g class="fc-legend" aria-hidden="true">']
    for swatch, mark, label in items:
        out.append(f'<rect class="fc-bar {swatch}" x="{_n(x)}" y="{_n(y - 8)}" '
                   f'width="9" height="9"/>')
        if mark == "cross":
            out.append(_cross(x + 4.5, y - 3.5, 3))
        elif mark == "diamond":
            out.append(_diamond(x + 4.5, y - 3.5, 3, "fc-mark-rollback"))
        elif mark == "check":
            out.append(_check(x + 4.5, y - 3.5, 3.5))
        elif mark == "ring":
            out.append(_ring(x + 4.5, y - 3.5, 3.5))
        out.append(f'<text class="fc-legend-text" x="{_n(x + 13)}" y="{_n(y)}">'
                   f'{_e(label)}</text>')
        x += 13 + len(label) * 5.3 + 12
    out.append("</g>")
    return out


@dataclass(frozen=True)
class _Frame:
    """The plot area of a bar chart and its y axis."""

    left: float
    top: float
    right: float
    bottom: float
    ticks: list[tuple[float, str]]

    def y(self, value: float) -> float:
        top_value = self.ticks[-1][0] or 1.0
        return self.bottom - (self.bottom - self.top) * min(value, top_value) / top_value

    def axis(self) -> list[str]:
        out = ['<g class="fc-axis">']
        for value, label in self.ticks:
            y = self.y(value)
            out.append(f'<line class="fc-grid" x1="{_n(self.left)}" y1="{_n(y)}" '
                       f'x2="{_n(self.right)}" y2="{_n(y)}"/>')
            out.append(f'<text class="fc-axis-text" x="{_n(self.left - 5)}" y="{_n(y + 3.5)}" '
                       f'text-anchor="end">{_e(label)}</text>')
        out.append(f'<line class="fc-baseline" x1="{_n(self.left)}" y1="{_n(self.bottom)}" '
                   f'x2="{_n(self.right)}" y2="{_n(self.bottom)}"/>')
        out.append("</g>")
        return out


def _bars_frame(width: int, height: int, ticks: list[tuple[float, str]]) -> _Frame:
    # Room above the plot for the legend and for the marks stacked over the tallest bar.
    left = 8 + max(len(label) for _, label in ticks) * _CHAR_WIDTH
    return _Frame(left, 34, width - 8, height - 18, ticks)


def _date_axis(frame: _Frame, whens: Sequence[datetime], centres: Sequence[float],
               height: int) -> list[str]:
    """Sparse dates under the bars: the first bar of a new day, if far enough from the last."""
    fmt = _date_format(whens)
    out = ['<g class="fc-axis fc-dates">']
    last_text, last_x = "", -1e9
    for when, cx in zip(whens, centres, strict=True):
        text = _date_label(when, fmt)
        if text == last_text or cx - last_x < 64:
            continue
        x = min(max(cx, frame.left + 16), frame.right - 16)
        out.append(f'<text class="fc-axis-text" x="{_n(x)}" y="{_n(height - 4)}" '
                   f'text-anchor="middle">{_e(text)}</text>')
        last_text, last_x = text, cx
    out.append("</g>")
    return out


def _slots(frame: _Frame, count: int) -> list[tuple[float, float]]:
    """(x, width) of each bar, oldest left: bars share the width, none wider than 24 px."""
    slot = (frame.right - frame.left) / count
    bw = min(max(slot * 0.7, 1.0), 24.0)
    return [(frame.left + i * slot + (slot - bw) / 2, bw) for i in range(count)]


def _bar(frame: _Frame, x: float, bw: float, value: float, classes: str, title: str,
         href: str | None, marks: Sequence[str]) -> str:
    """One bar: a link if it has a target, its tooltip, the rect, marks stacked on top."""
    y = frame.y(value)
    h = max(frame.bottom - y, 1.5)  # a zero still shows as a sliver
    y = frame.bottom - h
    cx, r = x + bw / 2, min(3.5, max(bw / 2, 2.0))
    parts = [f'<g class="fc-item"><title>{_e(title)}</title>',
             f'<rect class="fc-bar {classes}" x="{_n(x)}" y="{_n(y)}" '
             f'width="{_n(bw)}" height="{_n(h)}"/>']
    cy = y - r - 3
    for mark in marks:
        if mark == "cross":
            parts.append(_cross(cx, cy, r))
        elif mark == "diamond":
            parts.append(_diamond(cx, cy, r + 0.5, "fc-mark-rollback"))
        elif mark == "check":
            parts.append(_check(cx, cy, r))
        elif mark == "ring":
            parts.append(_ring(cx, cy, r))
        cy -= 2 * r + 3
    parts.append("</g>")
    body = "".join(parts)
    target = _safe_href(href)
    if target is None:
        return body
    return f'<a class="fc-link" href="{_e(target)}">{body}</a>'


# --- release durations --------------------------------------------------------------------


def release_chart(points: Sequence[ReleasePoint], *, width: int = 640, height: int = 160,
                  chart_id: str | None = None) -> Markup:
    """Durations of the last releases and rollbacks, oldest left, one bar each.

    Failed bars are hollow with a cross above, aborted ones hollow and dashed, rollbacks
    another colour with a diamond above. `chart_id` names the title/desc ids when a page
    shows the same data twice; otherwise they derive from the data.
    """
    width, height = max(int(width), 160), max(int(height), 100)
    title = "Release durations"
    shown = sorted(points, key=lambda p: _aware(p.when))[-MAX_RELEASES:]
    uid = _uid("releases", chart_id, (shown, width, height))
    if not shown:
        return _empty("releases", uid, width, title, "no releases yet")

    results = [p.result if p.result in _RESULTS else "unknown" for p in shown]
    kinds = [p.kind if p.kind in _KINDS else "release" for p in shown]
    durations = [_finite(p.duration) for p in shown]
    failed, aborted = results.count("failed"), results.count("aborted")
    rollbacks = kinds.count("rollback")

    desc = (f"last {len(shown)} of {len(points)} releases" if len(points) > len(shown)
            else _plural(len(shown), "release"))
    if rollbacks:
        desc += f" ({_plural(rollbacks, 'rollback')})"
    desc += f", {failed} failed"
    if aborted:
        desc += f", {aborted} aborted"
    desc += f", median {human_duration(statistics.median(durations))}"

    frame = _bars_frame(width, height, _duration_ticks(max(durations)))
    body = frame.axis()
    legend = [("fc-ok fc-release", "", "ok")] if "ok" in results else []
    if failed:
        legend.append(("fc-failed fc-release", "cross", "failed"))
    if aborted:
        legend.append(("fc-aborted fc-release", "", "aborted"))
    if rollbacks:
        legend.append(("fc-ok fc-rollback", "diamond", "rollback"))
    body += _legend(legend, frame.left, 11)

    slots = _slots(frame, len(shown))
    for p, (x, bw), result, kind, dur in zip(shown, slots, results, kinds, durations,
                                             strict=True):
        what = result if kind == "release" else f"{result} (rollback)"
        tip = f"{p.id} · {_stamp(p.when)} · {human_duration(dur)} · {what}"
        marks = (["cross"] if result == "failed" else []) + (
            ["diamond"] if kind == "rollback" else [])
        body.append(_bar(frame, x, bw, dur, f"fc-{result} fc-{kind}", tip, p.href, marks))
    body += _date_axis(frame, [p.when for p in shown], [x + bw / 2 for x, bw in slots], height)
    return _svg("releases", uid, width, height, title, desc, body)


# --- backup sizes -------------------------------------------------------------------------


def _verification(verified: bool | None) -> str:
    if verified is None:
        return "unverified"
    return "verified" if verified else "failed"


def backup_chart(points: Sequence[BackupPoint], *, width: int = 640, height: int = 160,
                 chart_id: str | None = None) -> Markup:
    """Sizes of the last backups, oldest left, with a mark for how verification went:
    a check (verified), a cross on a hollow bar (verification failed), a ring (never)."""
    width, height = max(int(width), 160), max(int(height), 100)
    title = "Backup sizes"
    shown = sorted(points, key=lambda p: _aware(p.when))[-MAX_RELEASES:]
    uid = _uid("backups", chart_id, (shown, width, height))
    if not shown:
        return _empty("backups", uid, width, title, "no backups yet")

    states = [_verification(p.verified) for p in shown]
    sizes = [_finite(p.bytes) for p in shown]
    ok, bad, never = states.count("verified"), states.count("failed"), states.count("unverified")
    desc = (f"last {len(shown)} of {len(points)} backups" if len(points) > len(shown)
            else _plural(len(shown), "backup"))
    desc += f", {ok} verified, {bad} failed verification, {never} never verified"
    desc += f", latest {human_bytes(int(sizes[-1]))}"

    frame = _bars_frame(width, height, _byte_ticks(max(sizes)))
    body = frame.axis()
    legend = []
    if ok:
        legend.append(("fc-verified", "check", "verified"))
    if bad:
        legend.append(("fc-failed", "cross", "verification failed"))
    if never:
        legend.append(("fc-unverified", "ring", "never verified"))
    body += _legend(legend, frame.left, 11)

    marks = {"verified": "check", "failed": "cross", "unverified": "ring"}
    said = {"verified": "verified", "failed": "verification failed",
            "unverified": "never verified"}
    slots = _slots(frame, len(shown))
    for p, (x, bw), state, size in zip(shown, slots, states, sizes, strict=True):
        tip = f"{p.id} · {_stamp(p.when)} · {human_bytes(int(size))} · {said[state]}"
        body.append(_bar(frame, x, bw, size, f"fc-backup fc-{state}", tip, p.href,
                         [marks[state]]))
    body += _date_axis(frame, [p.when for p in shown], [x + bw / 2 for x, bw in slots], height)
    return _svg("backups", uid, width, height, title, desc, body)


# --- step timeline ------------------------------------------------------------------------


def _span_end(span: Span, now: float) -> float:
    if span.status == "running":
        return max(now, _finite(span.start))
    return _finite(span.start) + _finite(span.duration)


def timeline(spans: Sequence[Span], *, total: float | None = None, width: int = 640,
             chart_id: str | None = None) -> Markup:
    """A row per step, in the given order: the name on the left, a bar from its start to its
    end. Running steps reach `total` (the run's age now); planned ones have no bar yet.
    Without `total` the axis ends where the last step does."""
    width = max(int(width), 200)
    title = "Steps"
    uid = _uid("steps", chart_id, (tuple(spans), total, width))
    if not spans:
        return _empty("steps", uid, width, title, "no steps yet")

    statuses = [s.status if s.status in _STATUSES else "planned" for s in spans]
    ends = [_finite(s.start) + _finite(s.duration) for s in spans if s.status != "planned"]
    starts = [_finite(s.start) for s in spans if s.status != "planned"]
    now = _finite(total) if total is not None else max([*ends, *starts, 0.0])
    now = max(now, *ends) if ends else now

    counts = [f"{statuses.count(s)} {s}" for s in _STATUSES if statuses.count(s)]
    desc = f"{_plural(len(spans), 'step')}: {', '.join(counts)}; {human_duration(now)}"
    desc += " so far" if "running" in statuses else " in all"

    ticks = _duration_ticks(now, most=5)  # a wide axis has room for more ticks
    longest = max(len(s.name) for s in spans)
    label_w = min(longest * _CHAR_WIDTH + 12, width * 0.38)
    fits = max(int((label_w - 12) / _CHAR_WIDTH), 4)
    left, right, top = label_w, width - 14, 4
    bottom = top + len(spans) * ROW_HEIGHT
    height = bottom + 20
    span_max = ticks[-1][0] or 1.0

    def x_at(t: float) -> float:
        return left + (right - left) * min(t, span_max) / span_max

    body = ['<g class="fc-axis">']
    for value, label in ticks:
        x = x_at(value)
        body.append(f'<line class="fc-grid" x1="{_n(x)}" y1="{top}" x2="{_n(x)}" '
                    f'y2="{_n(bottom)}"/>')
        anchor = "end" if value == ticks[-1][0] and len(ticks) > 1 else "middle"
        body.append(f'<text class="fc-axis-text" x="{_n(x)}" y="{_n(bottom + 14)}" '
                    f'text-anchor="{anchor}">{_e(label)}</text>')
    body.append(f'<line class="fc-baseline" x1="{_n(left)}" y1="{_n(bottom)}" '
                f'x2="{_n(right)}" y2="{_n(bottom)}"/>')
    body.append("</g>")

    for i, (span, status) in enumerate(zip(spans, statuses, strict=True)):
        y = top + i * ROW_HEIGHT
        name = span.name if len(span.name) <= fits else span.name[: fits - 1] + "…"
        start = _finite(span.start)
        if status == "planned":
            tip = f"{span.name} · planned"
        elif status == "running":
            tip = f"{span.name} · running · {human_duration(now - start)} so far"
        else:
            tip = (f"{span.name} · {status} · {human_duration(_finite(span.duration))} "
                   f"(from {human_duration(start)} to {human_duration(_span_end(span, now))})")
        row = [f'<g class="fc-row fc-{status}"><title>{_e(tip)}</title>',
               f'<text class="fc-label fc-{status}" x="2" y="{_n(y + 13)}">{_e(name)}</text>']
        if status != "planned":
            x0, x1 = x_at(start), x_at(_span_end(span, now))
            bw = max(x1 - x0, 2.0)
            row.append(f'<rect class="fc-bar fc-{status}" x="{_n(x0)}" y="{_n(y + 3)}" '
                       f'width="{_n(bw)}" height="{ROW_HEIGHT - 6}"/>')
            mid = y + ROW_HEIGHT / 2
            if status == "failed":
                row.append(_cross(x0 + bw + 6, mid, 3.5))
            elif status == "running":
                # An open arrow at the moving end: still going, whatever the colour.
                row.append(f'<path class="fc-mark fc-mark-running" d="M{_n(x0 + bw + 2)} '
                           f'{_n(mid - 4)}L{_n(x0 + bw + 7)} {_n(mid)}L{_n(x0 + bw + 2)} '
                           f'{_n(mid + 4)}"/>')
        row.append("</g>")
        body += row

    if "running" in statuses:
        x = x_at(now)
        body.append(f'<line class="fc-now" x1="{_n(x)}" y1="{top}" x2="{_n(x)}" '
                    f'y2="{_n(bottom)}"/>')
    return _svg("steps", uid, width, height, title, desc, body)
