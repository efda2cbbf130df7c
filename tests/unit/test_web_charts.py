"""The dashboard's SVG charts: valid XML, no inline style or script, everything escaped, bars
that match the data, summaries that count right."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from markupsafe import Markup

from ferryman.web.charts import (
    MAX_RELEASES,
    BackupPoint,
    ReleasePoint,
    Span,
    backup_chart,
    human_bytes,
    human_duration,
    release_chart,
    timeline,
)

NS = "{http://www.w3.org/2000/svg}"
NASTY = "<script>&\"'"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def classes(el: ET.Element) -> set[str]:
    return set(el.get("class", "").split())


def bars(root: ET.Element) -> list[ET.Element]:
    """The data bars (not the legend's swatches), in drawing order."""
    return [r for item in root.iter(f"{NS}g") if "fc-item" in classes(item) or
            "fc-row" in classes(item) for r in item.findall(f"{NS}rect")]


def items(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if classes(g) & {"fc-item", "fc-row"}]


def desc(root: ET.Element) -> str:
    return root.find(f"{NS}desc").text or ""


def release(i: int, duration: float, result: str = "ok", kind: str = "release",
            **kw: object) -> ReleasePoint:
    return ReleasePoint(T0 + timedelta(hours=7 * i), duration, result, kind, f"r{i:03}", **kw)


def assert_csp_safe(svg: Markup) -> None:
    text = str(svg)
    assert "style" not in text.lower()
    assert "<script" not in text.lower()
    assert not re.search(r"\son\w+=", text)  # no event handler attributes


def assert_accessible(root: ET.Element) -> None:
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+ [\d.]+", root.get("viewBox", ""))
    title, description = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and title.text and description is not None and description.text
    assert root.get("aria-labelledby") == title.get("id")
    assert root.get("aria-describedby") == description.get("id")


# --- release chart ------------------------------------------------------------------------


def test_release_chart_bars_follow_the_data() -> None:
    points = [release(0, 40), release(1, 95, "failed"), release(2, 12), release(3, 41, "aborted"),
              release(4, 30, kind="rollback")]
    svg = release_chart(points)
    root = parse(svg)
    assert_csp_safe(svg)
    assert_accessible(root)

    found = bars(root)
    assert len(found) == 5
    tallest = max(found, key=lambda r: float(r.get("height")))
    assert "fc-failed" in classes(tallest)
    # The tallest bar's tooltip names the longest release.
    tip = {id(r): g.find(f"{NS}title").text for g in items(root) for r in g.findall(f"{NS}rect")}
    assert tip[id(tallest)].startswith("r001 ")
    assert "1 min 35 s" in tip[id(tallest)] and "failed" in tip[id(tallest)]
    # Bars stand on the same baseline, heights in the order of the durations.
    heights = [float(r.get("height")) for r in found]
    assert sorted(range(5), key=lambda i: heights[i]) == [2, 4, 0, 3, 1]
    assert len({round(float(r.get("y")) + float(r.get("height")), 1) for r in found}) == 1


def test_release_classes_and_marks() -> None:
    points = [release(0, 40), release(1, 50, "failed"), release(2, 45, "aborted"),
              release(3, 20, kind="rollback"), release(4, 25, "failed", "rollback")]
    root = parse(release_chart(points))
    found = bars(root)
    assert classes(found[0]) >= {"fc-bar", "fc-ok", "fc-release"}
    assert classes(found[1]) >= {"fc-failed", "fc-release"}
    assert classes(found[2]) >= {"fc-aborted"}
    assert classes(found[3]) >= {"fc-ok", "fc-rollback"}
    assert classes(found[4]) >= {"fc-failed", "fc-rollback"}
    # Shape besides colour: a cross over each failed bar, a diamond over each rollback.
    marks = [[classes(p) for p in g.findall(f"{NS}path")] for g in items(root)]
    failed_marks = [any("fc-mark-failed" in c for c in m) for m in marks]
    rollback_marks = [any("fc-mark-rollback" in c for c in m) for m in marks]
    assert failed_marks == [False, True, False, False, True]
    assert rollback_marks == [False, False, False, True, True]


def test_release_desc_counts() -> None:
    points = [release(0, 10), release(1, 20, "failed"), release(2, 30, "failed"),
              release(3, 41, "aborted"), release(4, 50, kind="rollback"), release(5, 60)]
    text = desc(parse(release_chart(points)))
    assert text == "6 releases (1 rollback), 2 failed, 1 aborted, median 36 s"
    assert desc(parse(release_chart([release(0, 7.25)]))) == "1 release, 0 failed, median 7.2 s"


def test_release_newest_right_and_only_the_last_fifty() -> None:
    points = [release(i, 10 + i) for i in range(MAX_RELEASES + 23)]
    shuffled = points[::2] + points[1::2]  # order of input does not matter: time does
    root = parse(release_chart(shuffled))
    tips = [g.find(f"{NS}title").text for g in items(root)]
    assert len(tips) == MAX_RELEASES
    assert tips[0].startswith("r023 ") and tips[-1].startswith(f"r{MAX_RELEASES + 22:03} ")
    xs = [float(r.get("x")) for r in bars(root)]
    assert xs == sorted(xs)
    assert desc(root).startswith(f"last {MAX_RELEASES} of {MAX_RELEASES + 23} releases")


def test_release_tooltip_has_id_date_duration_result() -> None:
    when = datetime(2026, 3, 14, 10, 22, tzinfo=timezone(timedelta(hours=1)))
    root = parse(release_chart([ReleasePoint(when, 41, "ok", "release", "r20260314-1022")]))
    tip = items(root)[0].find(f"{NS}title").text
    assert tip == "r20260314-1022 · 2026-03-14 10:22 UTC+01:00 · 41 s · ok"


def test_release_y_axis_ticks() -> None:
    def labels(duration: float) -> list[str]:
        root = parse(release_chart([release(0, duration)]))
        axis = next(g for g in root.iter(f"{NS}g") if classes(g) == {"fc-axis"})
        return [t.text for t in axis.findall(f"{NS}text")]

    assert labels(41) == ["0", "20 s", "40 s", "60 s"]
    assert labels(69) == ["0", "25 s", "50 s", "75 s"]
    assert labels(600) == ["0", "5 min", "10 min"]
    assert labels(3 * 3600) == ["0", "1 h", "2 h", "3 h"]
    for d in (0.3, 7, 41, 99, 150, 1234, 5000, 40000):
        assert 3 <= len(labels(d)) <= 4, d


def test_release_dates_labelled_sparsely() -> None:
    points = [release(i, 30) for i in range(40)]  # every 7 h over 12 days
    root = parse(release_chart(points))
    dates = next(g for g in root.iter(f"{NS}g") if "fc-dates" in classes(g))
    labels = [t.text for t in dates.findall(f"{NS}text")]
    assert 2 <= len(labels) <= 10
    assert labels[0] == "1 Mar"
    assert len(set(labels)) == len(labels)
    xs = [float(t.get("x")) for t in dates.findall(f"{NS}text")]
    assert all(b - a >= 40 for a, b in pairwise(xs))


def test_release_links_kept_for_pages_dropped_for_scripts() -> None:
    points = [release(0, 10, href="#r000"), release(1, 10, href="/releases/r001?x=1&y=2"),
              release(2, 10, href="java\tscript:alert(1)"), release(3, 10, href="data:text/html,x"),
              release(4, 10)]
    svg = release_chart(points)
    root = parse(svg)
    links = [a.get("href") for a in root.iter(f"{NS}a")]
    assert links == ["#r000", "/releases/r001?x=1&y=2"]
    assert "alert" not in str(svg) and "data:" not in str(svg)
    assert len(bars(root)) == 5


def test_release_escaping() -> None:
    svg = release_chart([ReleasePoint(T0, 5, NASTY, NASTY, NASTY, href=f"#{NASTY}")])
    root = parse(svg)
    assert_csp_safe(svg)
    assert "<script>" not in str(svg)
    assert items(root)[0].find(f"{NS}title").text.startswith(NASTY + " ")
    # Unknown result and kind are not copied into class names.
    assert classes(bars(root)[0]) == {"fc-bar", "fc-unknown", "fc-release"}
    assert next(root.iter(f"{NS}a")).get("href") == f"#{NASTY}"


def test_empty_charts() -> None:
    for svg, message in ((release_chart([]), "no releases yet"),
                         (backup_chart([]), "no backups yet"),
                         (timeline([]), "no steps yet")):
        root = parse(svg)
        assert_csp_safe(svg)
        assert_accessible(root)
        assert desc(root) == message
        assert [t.text for t in root.iter(f"{NS}text")] == [message]


def test_output_is_deterministic_and_ids_unique_per_data() -> None:
    a = [release(0, 10), release(1, 20, "failed")]
    b = [release(0, 10), release(1, 21, "failed")]
    assert release_chart(a) == release_chart(list(a))
    assert parse(release_chart(a)).get("aria-labelledby") != \
        parse(release_chart(b)).get("aria-labelledby")
    named = parse(release_chart(a, chart_id='prod"releases'))
    assert named.get("aria-labelledby") == "prodreleases-t"


def test_bad_numbers_draw_as_zero() -> None:
    points = [release(0, float("nan")), release(1, -5), release(2, float("inf")), release(3, 20)]
    svg = release_chart(points)
    root = parse(svg)
    assert "nan" not in str(svg).lower() and "inf" not in str(svg).lower()
    heights = [float(r.get("height")) for r in bars(root)]
    assert max(heights) == heights[3] and heights[0] == heights[1] == heights[2]


def test_naive_and_mixed_time_zones_sort() -> None:
    east = timezone(timedelta(hours=5))
    points = [ReleasePoint(datetime(2026, 3, 1, 12, 0, tzinfo=east), 10, "ok", "release", "b"),
              ReleasePoint(datetime(2026, 3, 1, 8, 0), 10, "ok", "release", "c"),
              ReleasePoint(datetime(2026, 3, 1, 6, 0, tzinfo=UTC), 10, "ok", "release", "a")]
    root = parse(release_chart(points))
    assert [g.find(f"{NS}title").text[0] for g in items(root)] == ["a", "b", "c"]


def test_control_characters_removed() -> None:
    svg = release_chart([ReleasePoint(T0, 5, "ok", "release", "r1\x1b[31m\x00")])
    assert items(parse(svg))[0].find(f"{NS}title").text.startswith("r1[31m ")


# --- backup chart -------------------------------------------------------------------------


def backup(i: int, size: int, verified: bool | None, **kw: object) -> BackupPoint:
    return BackupPoint(T0 + timedelta(days=i), size, verified, f"b{i}", **kw)


def test_backup_chart() -> None:
    points = [backup(0, 300 * 2**20, True), backup(1, 1536 * 2**20, False),
              backup(2, 700 * 2**20, None), backup(3, 900 * 2**20, True)]
    svg = backup_chart(points)
    root = parse(svg)
    assert_csp_safe(svg)
    assert_accessible(root)
    assert desc(root) == ("4 backups, 2 verified, 1 failed verification, 1 never verified, "
                          "latest 900.0 MB")
    found = bars(root)
    assert [c & {"fc-verified", "fc-failed", "fc-unverified"} for c in map(classes, found)] == [
        {"fc-verified"}, {"fc-failed"}, {"fc-unverified"}, {"fc-verified"}]
    tallest = max(found, key=lambda r: float(r.get("height")))
    assert tallest is found[1]
    marks = [{c for p in g if p.tag != f"{NS}title" for c in classes(p) if c.startswith("fc-mark-")}
             for g in items(root)]
    assert marks == [{"fc-mark-verified"}, {"fc-mark-failed"}, {"fc-mark-unverified"},
                     {"fc-mark-verified"}]
    tips = [g.find(f"{NS}title").text for g in items(root)]
    assert tips[1] == "b1 · 2026-03-02 09:00 UTC · 1.5 GB · verification failed"
    assert tips[2].endswith("never verified")


def test_backup_axis_in_human_units() -> None:
    def labels(size: int) -> list[str]:
        root = parse(backup_chart([backup(0, size, True)]))
        axis = next(g for g in root.iter(f"{NS}g") if classes(g) == {"fc-axis"})
        return [t.text for t in axis.findall(f"{NS}text")]

    assert labels(1536 * 2**20) == ["0", "0.5 GB", "1 GB", "1.5 GB"]
    assert labels(300 * 2**10) == ["0", "100 KB", "200 KB", "300 KB"]
    assert labels(500) == ["0", "200 B", "400 B", "600 B"]
    assert labels(0)[-1].endswith(" B")


def test_backup_escaping_and_links() -> None:
    svg = backup_chart([BackupPoint(T0, 10, None, NASTY, href="#b1"),
                        BackupPoint(T0, 10, None, "b2", href="javascript:x")])
    root = parse(svg)
    assert_csp_safe(svg)
    assert items(root)[0].find(f"{NS}title").text.startswith(NASTY)
    assert [a.get("href") for a in root.iter(f"{NS}a")] == ["#b1"]


# --- step timeline ------------------------------------------------------------------------


STEPS = [Span("1/5 check hosts", 0, 2.0, "ok"),
         Span("2/5 transfer images", 2.0, 30.0, "ok"),
         Span("3/5 switch", 32.0, 4.0, "failed"),
         Span("4/5 undo switch", 36.0, 1.5, "undone"),
         Span("5/5 health", 0, None, "planned")]


def test_timeline_rows_and_bars() -> None:
    svg = timeline(STEPS)
    root = parse(svg)
    assert_csp_safe(svg)
    assert_accessible(root)
    rows = items(root)
    assert [classes(g) - {"fc-row"} for g in rows] == [
        {"fc-ok"}, {"fc-ok"}, {"fc-failed"}, {"fc-undone"}, {"fc-planned"}]
    assert [r.find(f"{NS}text").text for r in rows] == [s.name for s in STEPS]
    # About 18 px per row.
    height = float(root.get("viewBox").split()[3])
    assert 5 * 18 <= height <= 5 * 18 + 40
    # Planned steps have no bar yet; the others start and end where their times say.
    assert rows[4].find(f"{NS}rect") is None
    rects = [r.find(f"{NS}rect") for r in rows[:4]]
    x = [float(r.get("x")) for r in rects]
    w = [float(r.get("width")) for r in rects]
    assert x[0] < x[1] < x[2] < x[3]
    assert x[1] + w[1] == pytest.approx(x[2], abs=0.2)
    assert max(w) == w[1]
    assert any("fc-mark-failed" in classes(p) for p in rows[2].findall(f"{NS}path"))
    assert desc(root) == "5 steps: 2 ok, 1 failed, 1 undone, 1 planned; 38 s in all"


def test_timeline_running_reaches_now() -> None:
    spans = [Span("1/3 check", 0, 2.0, "ok"), Span("2/3 transfer", 2.0, None, "running"),
             Span("3/3 up", 0, None, "planned")]
    root = parse(timeline(spans, total=62.0))
    rows = items(root)
    running = rows[1].find(f"{NS}rect")
    assert "fc-running" in classes(running)
    now = next(line for line in root.iter(f"{NS}line") if "fc-now" in classes(line))
    end = float(running.get("x")) + float(running.get("width"))
    assert end == pytest.approx(float(now.get("x1")), abs=0.2)
    assert desc(root) == "3 steps: 1 ok, 1 running, 1 planned; 1 min 2 s so far"
    assert rows[1].find(f"{NS}title").text == "2/3 transfer · running · 1 min so far"
    axis = next(g for g in root.iter(f"{NS}g") if classes(g) == {"fc-axis"})
    assert [t.text for t in axis.findall(f"{NS}text")] == ["0", "20 s", "40 s", "60 s", "80 s"]


def test_timeline_axis_in_seconds_ends_past_the_last_step() -> None:
    root = parse(timeline([Span("a", 0, 10, "ok"), Span("b", 10, 33, "ok")]))
    axis = next(g for g in root.iter(f"{NS}g") if classes(g) == {"fc-axis"})
    labels = [t.text for t in axis.findall(f"{NS}text")]
    assert labels[0] == "0" and all(label.endswith(" s") for label in labels[1:])
    assert 3 <= len(labels) <= 6
    assert float(labels[-1].split()[0]) >= 43


def test_timeline_escaping_and_long_names() -> None:
    long = "7/8 " + "x" * 200
    svg = timeline([Span(NASTY, 0, 1, "ok"), Span(long, 1, 1, "weird")], width=640)
    root = parse(svg)
    assert_csp_safe(svg)
    rows = items(root)
    assert rows[0].find(f"{NS}text").text == NASTY
    label = rows[1].find(f"{NS}text").text
    assert label.endswith("…") and len(label) < 60
    assert rows[1].find(f"{NS}title").text.startswith(long)  # full name in the tooltip
    assert "fc-planned" in classes(rows[1])  # unknown status: no class made from it


def test_helpers() -> None:
    assert human_duration(0.04) == "0 s"
    assert human_duration(4.25) == "4.2 s"
    assert human_duration(59.6) == "1 min"
    assert human_duration(125) == "2 min 5 s"
    assert human_duration(3 * 3600 + 120) == "3 h 2 min"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536 * 2**20) == "1.5 GB"
