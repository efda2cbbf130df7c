from __future__ import annotations

import json

import pytest

from ferryman.guards import GuardError, check_json, names_self, rewrite


def test_names_self() -> None:
    assert names_self("http://172.30.30.58:9380", "172.30.30.58")
    assert names_self("http://localhost:9380/api", "172.30.30.58")
    assert names_self("127.0.0.1:9380", "172.30.30.58")
    assert not names_self("http://172.30.30.57:9380", "172.30.30.58")
    # A longer address that merely contains ours is not ours.
    assert not names_self("http://172.30.30.580:9380", "172.30.30.58")


def test_rewrite_keeps_scheme_port_path() -> None:
    assert rewrite("http://172.30.30.57:9380/v1?x=1", "172.30.30.58") == \
        "http://172.30.30.58:9380/v1?x=1"
    assert rewrite("https://u:p@prod.example:8443/", "test.example") == \
        "https://u:p@test.example:8443/"
    assert rewrite("172.30.30.57", "172.30.30.58") == "172.30.30.58"


def test_check_json_polluted_and_clean() -> None:
    text = json.dumps({"base_url": "http://172.30.30.57:9380", "n": 1}, indent=2)
    v = check_json(text, ["base_url"], "172.30.30.58")
    assert not v.ok and v.value == "http://172.30.30.57:9380"
    assert json.loads(v.fixed_text or "") == {"base_url": "http://172.30.30.58:9380", "n": 1}
    assert check_json(v.fixed_text or "", ["base_url"], "172.30.30.58").ok


def test_check_json_nested_and_errors() -> None:
    text = '{"ragflow": {"base_url": "http://10.0.0.57"}}'
    v = check_json(text, ["ragflow", "base_url"], "10.0.0.58")
    assert v.fixed_value == "http://10.0.0.58"
    with pytest.raises(GuardError, match="not found"):
        check_json(text, ["base_url"], "x")
    with pytest.raises(GuardError, match="not valid JSON"):
        check_json("{", ["base_url"], "x")
    with pytest.raises(GuardError, match="not a string"):
        check_json('{"base_url": 3}', ["base_url"], "x")
