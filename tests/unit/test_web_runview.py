"""The run page's fold, on JSONL logs of real runs against the demo's test hosts: a release
that passed (8 steps, an image transfer) and one whose health gate failed and was undone."""

from __future__ import annotations

import json
from pathlib import Path

from ferryman.web.runs import RunStore, parse_lines
from ferryman.web.runview import RunView, fold

DATA = Path(__file__).parent / "data" / "web"
OK = "20261130-223250-release-15620-a73160"  # started by the dashboard (run_start/run_end)
FAILED = "20261130-223321-release-18534"  # the CLI's: health of web failed, undone


def records(run_id: str) -> list[dict]:
    return parse_lines((DATA / f"{run_id}.jsonl").read_text())


def test_a_passed_release_folds_to_its_steps_transfer_and_user() -> None:
    view = fold(OK, records(OK))
    assert view.status == "ok" and view.wrapped and view.user == "root"
    assert view.exit_code == 0 and view.error is None
    assert [s.name for s in view.steps.values()][:2] == ["lock prod on prod-1",
                                                         "transfer images test-1 -> prod-1"]
    assert len(view.steps) == 8 and all(s.status == "ok" for s in view.steps.values())
    transfer = view.steps[2].transfers
    [t] = transfer.values()
    assert t.done and t.total == t.completed == 1982399 and t.percent == 100
    # The commands each step ran are kept with it, for the page's details.
    assert any("docker" in c["command"] for c in view.steps[3].commands)
    assert view.duration is not None and view.duration > 0


def test_a_failed_release_shows_the_failure_its_raw_output_and_what_was_undone() -> None:
    view = fold(FAILED, records(FAILED))
    assert view.status == "failed" and not view.wrapped
    failed = [s for s in view.steps.values() if s.status == "failed"]
    assert [s.name for s in failed] == ["health of web on prod-1"]
    assert "not healthy" in failed[0].failure["error"]
    assert "web printed no log lines" in failed[0].failure["stdout"]
    undone = {u["name"]: u["status"] for u in view.undos}
    assert undone == {"start new web on prod-1": "ok", "stop old web on prod-1": "failed"}
    by_name = {s.name: s.status for s in view.steps.values()}
    assert by_name["stop old web on prod-1"] == "undo-failed"
    assert by_name["start new web on prod-1"] == "undone"
    assert "NEEDS ATTENTION" in view.end["host_state"]["prod-1"]


def test_each_line_names_the_parts_of_the_page_it_changes() -> None:
    view = RunView(OK)
    recs = records(OK)
    seen = [view.apply(rec) for rec in recs]
    assert seen[0] == {"head"}  # run_start
    start = next(i for i, r in enumerate(recs) if r["event"] == "flow_start")
    assert seen[start] == {"head", "steps"}  # flow_start lists the steps
    assert all(not parts for parts in seen[1:start])  # planning's commands: no step yet
    assert any(parts == {"step-2"} for parts in seen)  # progress of the transfer
    assert seen[-1] == {"head", "notes"}  # run_end
    assert view.lines == len(seen)


def test_a_line_cut_midway_is_left_for_the_next_read() -> None:
    lines = (DATA / f"{OK}.jsonl").read_text().splitlines()
    torn = "\n".join(lines[:5]) + "\n" + lines[5][:40]
    assert len(parse_lines(torn)) == 5


def test_a_cli_run_whose_process_is_gone_without_a_last_word_is_told_as_such(
        tmp_path: Path) -> None:
    recs = records(FAILED)
    cut = [r for r in recs if r["event"] != "flow_end"][:12]
    (tmp_path / f"{FAILED}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cut))
    view = RunStore(tmp_path).view(FAILED)  # pid 18534 of that machine is not this one's
    assert view.status in ("gone", "running")
    if view.status == "running":  # by chance a live process has that pid here
        return
    assert view.finished


def test_run_ids_are_checked_before_any_path_is_built(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    for bad in ("../etc/passwd", "20261130-223250-release-1/../../x", ""):
        try:
            store.path(bad)
        except Exception as exc:
            assert "not a run id" in str(exc)
        else:
            raise AssertionError(bad)


def test_following_a_run_replays_from_the_line_asked_for_and_ends(tmp_path: Path) -> None:
    import asyncio
    import shutil

    shutil.copy(DATA / f"{OK}.jsonl", tmp_path)
    store = RunStore(tmp_path)
    total = len(records(OK))

    async def collect(start: int) -> list[tuple[int, set[str]]]:
        return [(n, changed) async for n, _, changed in store.follow(OK, start)]

    everything = asyncio.run(collect(0))
    assert [n for n, _ in everything[:-1]] == list(range(1, total + 1))
    assert everything[-1] == (total, {"end"})
    # A browser that saw 40 lines (Last-Event-ID: 40) gets the rest, then the end.
    rest = asyncio.run(collect(40))
    assert [n for n, _ in rest[:-1]] == list(range(41, total + 1))


def test_a_dashboard_run_ending_between_two_looks_is_read_to_its_last_line(
        tmp_path: Path) -> None:
    """The launcher writes run_end, then lets go of the run: a follower that finds it let go
    must still read that last line (liveness is asked before the file is read)."""
    import asyncio
    import json
    import os

    run_id = f"20261130-120000-backup-{os.getpid()}-abcdef"
    path = tmp_path / f"{run_id}.jsonl"
    head = [{"ts": "2026-11-30T12:00:00.000+00:00", "event": "run_start", "user": "ada",
             "action": "backup", "params": {}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in head))
    store = RunStore(tmp_path)
    calls = []

    def active() -> set[str]:
        calls.append(1)
        if len(calls) == 1:
            return {run_id}
        # The run ends now: its last line written, then let go.
        with path.open("a") as f:
            f.write(json.dumps({"ts": "2026-11-30T12:00:01.000+00:00", "event": "run_end",
                                "exit_code": 0}) + "\n")
        return set()

    store.active = active

    async def last() -> str:
        status = ""
        async for _, view, _ in store.follow(run_id, 0):
            status = view.status
        return status

    assert asyncio.run(last()) == "ok"
