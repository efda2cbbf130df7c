"""Pure parts of release: state commands, compose overrides, image commands, policy."""

from __future__ import annotations

import json
import subprocess

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


def test_save_and_load_fail_when_any_side_of_the_pipe_fails() -> None:
    # The scripts run in dash here as on servers; docker is replaced by failing commands.
    save = di.save(["img"], "gzip")
    script = save[2].replace("{ docker save", "{ false")
    res = subprocess.run(["sh", "-c", script, "x", di.COMPRESS["gzip"], "img"],
                         capture_output=True)
    assert res.returncode == 1 and b"docker save exit 1" in res.stderr
    load = di.load("gzip")[2].replace("docker load", "cat >/dev/null")
    res = subprocess.run(["sh", "-c", load, "x", di.DECOMPRESS["gzip"]], input=b"not gzip",
                         capture_output=True)
    assert res.returncode == 1 and b"decompressor exit 1" in res.stderr
    assert di.pick_compression({"zstd", "gzip"}, {"gzip"}) == "gzip"
    assert di.pick_compression({"zstd"}, {"zstd", "gzip"}) == "zstd"
    assert di.pick_compression(set(), {"gzip"}) == "none"


def test_pick_release_to_roll_back() -> None:
    base = {"from": "test", "to": "prod", "who": "ana@laptop", "when": "2026-11-30T10:00:00"}
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
