"""The release record: typed, versioned; older versions read, newer ones refused by name."""

from __future__ import annotations

import json

import pytest

from ferryman.record import VERSION, Image, Record, ServiceChange, parse_history, parse_record
from ferryman.state import ID_PATTERN, release_id

# A line written by the first ferryman (no version key), as found on a server.
V1_LINE = (
    '{"id":"r20261123-101500","kind":"release","from":"test","to":"prod","who":"ana@laptop",'
    '"when":"2026-11-23T10:15:00+00:00","duration":4.3,"result":"ok","services":[{"service":'
    '"web","host":"prod-1","container":"web","new":{"ref":"ferryman-app:v2","id":"sha256:bb"},'
    '"old":{"ref":"ferryman-app:v1","id":"sha256:aa"},"mode":"run","kept":'
    '"web.ferryman-r20261123-101500","restart_policy":"unless-stopped"},{"service":"api",'
    '"host":"prod-1","container":"shop-api","new":{"ref":"ferryman-app:v2","id":"sha256:bb"},'
    '"old":{"ref":"ferryman-app:v1","id":"sha256:aa"},"mode":"compose"}]}'
)


def test_a_version_1_record_is_read_with_its_meaning() -> None:
    r = parse_record(json.loads(V1_LINE))
    assert r.version == 1 and r.from_env == "test" and r.result == "ok"
    web, api = r.services
    assert web.mode == "run" and web.kept == "web.ferryman-r20261123-101500"
    assert web.restart_policy == "unless-stopped" and web.old == Image(ref="ferryman-app:v1",
                                                                      id="sha256:aa")
    assert api.mode == "compose" and api.kept is None


def test_a_record_round_trips_with_its_version() -> None:
    r = Record(id="r1", kind="release", from_env="test", to="prod", who="a", when="t",
               result="ok", services=[ServiceChange(service="web", host="h", container="web",
                                                    mode="bootstrap", new=Image(ref="x", id="y"))])
    line = r.to_line()
    data = json.loads(line)
    assert data["version"] == VERSION and data["from"] == "test" and "old" not in \
        data["services"][0]
    assert parse_record(data) == r


def test_a_newer_or_malformed_record_is_refused_never_misread() -> None:
    newer = {**json.loads(V1_LINE), "version": VERSION + 1}
    with pytest.raises(ValueError, match="newer than this ferryman reads"):
        parse_record(newer)
    bad_mode = json.loads(V1_LINE)
    bad_mode["services"][0]["mode"] = "teleport"
    with pytest.raises(ValueError, match=r"services\.0\.mode"):
        parse_record(bad_mode)
    history = parse_history(V1_LINE + "\n" + json.dumps(newer) + "\n")
    assert [r.id for r in history.records] == ["r20261123-101500"]
    assert len(history.unreadable) == 1 and "line 2" in history.unreadable[0]


def test_release_ids_are_unique_below_one_second() -> None:
    ids = {release_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(ID_PATTERN.match(i) for i in ids)
    assert ID_PATTERN.match("r20261123-101500")  # ids of the first version still valid
