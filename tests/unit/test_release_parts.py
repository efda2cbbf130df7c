"""Pure parts of release: state commands, compose overrides, image commands, policy."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ferryman.docker import compose as dcompose
from ferryman.docker import images as di
from ferryman.docker.inspect import ComposeInfo
from ferryman.flows.rollback import pick
from ferryman.record import parse_history


def test_compose_override_and_up() -> None:
    text = 'version: "3.8"\nservices:\n  api:\n    image: x\n'
    assert dcompose.file_version(text) == "3.8"
    assert dcompose.file_version("services: {}\n") is None
    assert dcompose.override("api", "app:v2", "3.8") == (
        'version: "3.8"\nservices:\n  api:\n    image: "app:v2"\n')
    info = ComposeInfo("shop", "api", "/opt/shop", ["/opt/shop/a.yml", "/opt/shop/b.yml"])
    assert dcompose.up_service(info, "/o.yml", v2=False) == [
        "docker-compose", "-p", "shop", "--project-directory", "/opt/shop",
        "-f", "/opt/shop/a.yml", "-f", "/opt/shop/b.yml", "-f", "/o.yml",
        "up", "-d", "--no-deps", "api"]
    assert dcompose.up_service(info, "/o.yml", v2=True)[:2] == ["docker", "compose"]
    # Brought up once with the override, the labels list it: it is not named twice.
    again = ComposeInfo("shop", "api", "/opt/shop", ["/opt/shop/a.yml", "/o.yml"])
    assert dcompose.up_service(again, "/o.yml", v2=False).count("/o.yml") == 1


# Stand-ins found first on PATH: each logs its call, consumes what a real one would, and
# exits as its scenario says. The save/load scripts run unchanged, so rewording them cannot
# hide a broken pipe check, and the log proves the fault was injected where it was meant to be.
_STAND_IN = """#!/bin/sh
printf '%s %s\\n' "${0##*/}" "$*" >> "$STAND_IN_LOG"
case "${0##*/} $1" in
  "docker save") printf 'image-bytes' ;;
  *) cat >/dev/null ;;
esac
exit "$1_EXIT"
"""


@dataclass
class Piped:
    code: int
    stdout: bytes
    stderr: str
    calls: list[str]


def _run_with(tmp_path: Path, exits: dict[str, int], argv: list[str],
              stdin: bytes = b"") -> Piped:
    """Runs argv (dash, as on servers) with each tool in `exits` replaced by a stand-in that
    exits with that status. docker is always a stand-in: no engine is touched."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STAND_IN_LOG": str(log)}
    for tool, code in {"docker": 0, **exits}.items():
        script = _STAND_IN.replace('"$1_EXIT"', f'"${tool.upper()}_EXIT"')
        (bin_dir / tool).write_text(script)
        (bin_dir / tool).chmod(0o755)
        env[f"{tool.upper()}_EXIT"] = str(code)
    res = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)
    calls = log.read_text().splitlines() if log.exists() else []
    return Piped(res.returncode, res.stdout, res.stderr.decode(), calls)


def test_save_succeeds_when_both_sides_do(tmp_path) -> None:
    res = _run_with(tmp_path, {}, di.save(["img"], "gzip"))
    assert (res.code, res.calls) == (0, ["docker save img"]), res.stderr
    assert gzip.decompress(res.stdout) == b"image-bytes"


def test_save_fails_when_docker_save_fails(tmp_path) -> None:
    res = _run_with(tmp_path, {"docker": 1}, di.save(["img"], "gzip"))
    assert res.calls == ["docker save img"]
    assert res.code == 1
    assert "docker save exit 1, compressor exit 0" in res.stderr


def test_save_fails_when_the_compressor_fails(tmp_path) -> None:
    res = _run_with(tmp_path, {"gzip": 2}, di.save(["img"], "gzip"))
    assert sorted(res.calls) == ["docker save img", "gzip -1 -c"]
    assert res.code == 1
    assert "docker save exit 0, compressor exit 2" in res.stderr


def test_load_succeeds_when_both_sides_do(tmp_path) -> None:
    res = _run_with(tmp_path, {}, di.load("gzip"), stdin=gzip.compress(b"image-bytes"))
    assert (res.code, res.calls) == (0, ["docker load"]), res.stderr


def test_load_fails_when_the_decompressor_fails(tmp_path) -> None:
    res = _run_with(tmp_path, {"gzip": 1}, di.load("gzip"), stdin=gzip.compress(b"x"))
    assert sorted(res.calls) == ["docker load", "gzip -d -c"]
    assert res.code == 1
    assert "decompressor exit 1, docker load exit 0" in res.stderr


def test_load_fails_when_docker_load_fails(tmp_path) -> None:
    res = _run_with(tmp_path, {"docker": 1}, di.load("gzip"), stdin=gzip.compress(b"x"))
    assert res.calls == ["docker load"]
    assert res.code == 1
    assert "decompressor exit 0, docker load exit 1" in res.stderr


def test_pick_compression() -> None:
    assert di.pick_compression({"zstd", "gzip"}, {"gzip"}) == "gzip"
    assert di.pick_compression({"zstd"}, {"zstd", "gzip"}) == "zstd"
    assert di.pick_compression(set(), {"gzip"}) == "none"


def test_pick_release_to_roll_back() -> None:
    change = {"service": "web", "host": "prod-1", "container": "web", "mode": "compose",
              "new": {"ref": "app:v2", "id": "sha256:b"}, "old": {"ref": "app:v1", "id": "a"}}
    base = {"from": "test", "to": "prod", "who": "ana@laptop", "when": "2026-11-30T10:00:00",
            "services": [change]}
    lines = "\n".join(json.dumps({**base, **r}) for r in [
        {"id": "r1", "kind": "release", "result": "ok"},
        {"id": "r2", "kind": "release", "result": "ok"},
        {"id": "r3", "kind": "release", "result": "failed"},
        {"id": "r4", "kind": "rollback", "result": "ok", "rolls_back": "r2"},
    ]) + "\n{torn"
    history = parse_history(lines)
    assert len(history.records) == 4 and len(history.unreadable) == 1
    assert pick(history, "prod", None).id == "r1"
    assert pick(history, "prod", "r2").id == "r2"


def test_a_release_that_changed_nothing_is_not_rolled_back() -> None:
    base = {"from": "test", "to": "prod", "who": "a", "when": "t", "kind": "release",
            "result": "ok"}
    svc = {"service": "web", "host": "prod-1", "container": "web",
           "new": {"ref": "app:v2", "id": "sha256:b"}, "old": {"ref": "app:v1", "id": "sha256:a"}}
    lines = "\n".join(json.dumps(r) for r in [
        {**base, "id": "r1", "services": [{**svc, "mode": "run", "kept": "web.ferryman-r1"}]},
        {**base, "id": "r2", "services": [{**svc, "mode": "unchanged"}]},
    ])
    assert pick(parse_history(lines), "prod", None).id == "r1"
