"""Building blocks of the configuration: addresses, durations, policy, .env and masking."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ferryman.config import Address, Config, HostSpec, Policy, mask, parse_address, parse_duration
from ferryman.config.envfile import parse_env_text, substitute


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root@172.30.30.57:22", Address("root", "172.30.30.57", 22)),
        ("deploy@prod.example.org", Address("deploy", "prod.example.org", None)),
        ("web-1", Address(None, "web-1", None)),
        ("[::1]:2222", Address(None, "::1", 2222)),
        ("user@[fe80::1]:22", Address("user", "fe80::1", 22)),
        ("[fe80::1]", Address(None, "fe80::1", None)),
        ("fe80::1", Address(None, "fe80::1", None)),
        ("h:65535", Address(None, "h", 65535)),
        ("local", Address(None, "localhost", None, is_local=True)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", "root@", "root@:22", "h:0", "h:65536", "h:", "a b", "[::1", "x@y@z", "h:२२"]
)
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="user@host"):
        parse_address(text)


def test_local_not_allowed_for_jump() -> None:
    with pytest.raises(ValueError, match="not 'local'"):
        parse_address("local", allow_local=False)


def test_host_label_and_properties() -> None:
    assert HostSpec(address="root@h:2").label == "h"
    assert HostSpec(address="root@h:2", name="primary").label == "primary"
    local = HostSpec(address="local")
    assert local.is_local and local.label == "local" and local.port is None
    with pytest.raises(ValidationError):
        HostSpec(address="root@:22")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("45", 45.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        (" 2s ", 2.0),
        (0, 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [-1, "-2s", "abc", "", "5d", "s", True, None, "nan", [1]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_policy_allows() -> None:
    assert Policy().allows("anything")
    policy = Policy(allowed_tags=["v*", "release-?"])
    assert policy.allows("v1.2.3")
    assert policy.allows("release-1")
    assert not policy.allows("latest")
    assert not policy.allows("V1.2.3")  # case-sensitive, like Docker tags
    assert not policy.allows("release-10")


def test_models_forbid_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate({"allowed_tag": ["v*"]})
    with pytest.raises(ValidationError):
        Config.model_validate(
            {"project": "p", "environments": {"a": {"hosts": [{"address": "h"}]}}, "source": "x"}
        )


def test_parse_env_text() -> None:
    values, errors = parse_env_text(
        "# comment\n"
        "\n"
        "A=1\n"
        "export B = two \n"
        "C='single # not a comment'\n"
        'D="double"  # comment\n'
        "E=plain # comment\n"
        "F=\n"
        "G=a=b\n"
    )
    assert values == {
        "A": "1",
        "B": "two",
        "C": "single # not a comment",
        "D": "double",
        "E": "plain",
        "F": "",
        "G": "a=b",
    }
    assert errors == []


def test_parse_env_text_reports_bad_lines() -> None:
    _, errors = parse_env_text("OK=1\nno equals sign\n1X=2\nQ='open\n")
    assert [e.line for e in errors] == [2, 3, 4]


def test_substitute() -> None:
    env = {"A": "alpha", "EMPTY": ""}
    result = substitute("x-${A}-${B:-beta}-${EMPTY:-gamma}-$${A}", env.get)
    assert result.text == "x-alpha-beta-gamma-${A}"
    assert result.secrets == {"alpha"}
    assert result.undefined == []
    missing = substitute("${NOPE}", env.get)
    assert missing.undefined == ["NOPE"]
    assert substitute("${bad name} ${A", env.get).malformed == ["${bad name}", "${"]


def test_mask_longest_secret_first() -> None:
    assert mask("root@10.0.0.1:22", {"10.0.0.1", "10.0.0.1:22"}) == "root@***"
    assert mask("a-s-a", {"a", ""}) == "***-s-***"
