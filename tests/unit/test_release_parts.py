"""Pure parts of release: state commands, compose overrides, image commands, policy."""

from __future__ import annotations

import asyncio
import json
import subprocess

from ferryman.docker import compose as dcompose
from ferryman.docker import images as di
from ferryman.docker.inspect import ComposeInfo
from ferryman.flows.rollback import pick
from ferryman.state import LOCK_HELD, LockOwner, acquire_lock, parse_records, release_lock
from ferryman.transport import LocalHost


def test_lock_is_exclusive_and_only_its_owner_releases(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("ferryman.state.ROOT", str(tmp_path))
    host = LocalHost()
    ana, bob = LockOwner.mine("release a"), LockOwner.mine("release b")

    async def go() -> None:
        assert (await host.run(acquire_lock("p", ana))).ok
        held = await host.run(acquire_lock("p", bob))
        assert held.exit_status == LOCK_HELD
        assert LockOwner.parse(held.stdout) == ana
        await host.run(release_lock("p", bob))  # not bob's: stays
        assert (tmp_path / "p/lock/owner.json").exists()
        await host.run(release_lock("p", ana))
        assert not (tmp_path / "p/lock").exists()
        assert (await host.run(acquire_lock("p", bob))).ok

    asyncio.run(go())


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
    lines = "\n".join(json.dumps(r) for r in [
        {"id": "r1", "kind": "release", "to": "prod", "result": "ok"},
        {"id": "r2", "kind": "release", "to": "prod", "result": "ok"},
        {"id": "r3", "kind": "release", "to": "prod", "result": "failed"},
        {"id": "r4", "kind": "rollback", "to": "prod", "result": "ok", "rolls_back": "r2"},
    ]) + "\n{torn"
    records = parse_records(lines)
    assert len(records) == 4
    assert pick(records, "prod", None)["id"] == "r1"
    assert pick(records, "prod", "r2")["id"] == "r2"
