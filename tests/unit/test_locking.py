"""The environment lock on a host: exclusive, given back only by its owner, recognised as
stale when its owner is gone (pid on this machine, or heartbeat too old)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from ferryman.errors import EXIT_PRECONDITION, LockHeld
from ferryman.locking import (
    LOCK_HELD,
    STALE_AFTER,
    EnvLock,
    LockOwner,
    acquire_lock,
    parse_held,
    release_lock,
)
from ferryman.transport import LocalHost


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("ferryman.state.ROOT", str(tmp_path))
    return tmp_path


def test_lock_is_exclusive_and_only_its_owner_releases(root: Path) -> None:
    host = LocalHost()
    ana, bob = LockOwner.mine("release a"), LockOwner.mine("release b")

    async def go() -> None:
        assert (await host.run(acquire_lock("p", ana))).ok
        held = await host.run(acquire_lock("p", bob))
        assert held.exit_status == LOCK_HELD
        seen = parse_held(held.stdout)
        assert seen.owner == ana and 0 <= seen.age < STALE_AFTER
        await host.run(release_lock("p", bob))  # not bob's: stays
        assert (root / "p/lock/owner.json").exists()
        await host.run(release_lock("p", ana))
        assert not (root / "p/lock").exists()
        assert (await host.run(acquire_lock("p", bob))).ok

    asyncio.run(go())


def _held_by(root: Path, owner: LockOwner, age: float = 0) -> None:
    lock = root / "shop/lock"
    lock.mkdir(parents=True)
    (lock / "owner.json").write_text(owner.to_json())
    if age:
        t = (root / "shop/lock/owner.json").stat().st_mtime - age
        os.utime(lock / "owner.json", (t, t))


def test_a_live_owner_keeps_its_lock(root: Path) -> None:
    _held_by(root, LockOwner.mine("release test prod (r1)"))  # this very process: alive
    lk = EnvLock("prod", "prod-1", LocalHost(), "shop", LockOwner.mine("release again"))
    with pytest.raises(LockHeld) as err:
        asyncio.run(lk.take())
    assert err.value.exit_code == EXIT_PRECONDITION
    assert "prod is locked by" in str(err.value) and "release test prod (r1)" in str(err.value)
    assert "ferryman unlock prod" in err.value.hint


def test_a_lock_whose_process_is_gone_is_taken_over(root: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = LockOwner.mine("release test prod (r1)")
    owner.pid = dead.pid
    _held_by(root, owner)
    lk = EnvLock("prod", "prod-1", LocalHost(), "shop", LockOwner.mine("release again"))

    async def go() -> None:
        await lk.take()
        await lk.give_back()

    asyncio.run(go())
    assert f"process {dead.pid}" in lk.took_over and "is gone" in lk.took_over
    assert not (root / "shop/lock").exists()


def test_a_lock_without_heartbeat_is_stale_even_from_another_machine(root: Path) -> None:
    owner = LockOwner.mine("release test prod (r1)")
    owner.machine, owner.pid = "elsewhere", 1
    _held_by(root, owner, age=STALE_AFTER + 30)
    lk = EnvLock("prod", "prod-1", LocalHost(), "shop", LockOwner.mine("release again"))

    async def go() -> None:
        await lk.take()
        assert lk.held
        await lk.give_back()

    asyncio.run(go())
    assert "no heartbeat for" in lk.took_over


def test_a_recent_lock_from_another_machine_is_live(root: Path) -> None:
    owner = LockOwner.mine("release test prod (r1)")
    owner.machine, owner.pid = "elsewhere", 1
    _held_by(root, owner, age=STALE_AFTER / 3)
    lk = EnvLock("prod", "prod-1", LocalHost(), "shop", LockOwner.mine("release again"))
    with pytest.raises(LockHeld):
        asyncio.run(lk.take())
