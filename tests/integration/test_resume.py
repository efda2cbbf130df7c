"""ferryman killed (SIGKILL) at each step of a release: the journal left on PROD refuses the
next run, `abort` makes PROD wholly old again, `resume` makes it wholly new, and the release
after that succeeds.

One demo (TEST v2, PROD v1: `web` by docker run, `api` by docker-compose, PROD's base_url
naming TEST) serves every kill: each abort must bring PROD back exactly as it was.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from labenv import ferryman

from ferryman.lab.demo import CONFIG_FILE, Demo, down, up

STEPS = ["transfer images test-1 -> prod-1", "stop old web on prod-1",
         "start new web on prod-1", "health of web on prod-1", "compose up api on prod-1",
         "health of api on prod-1", f"guard base_url in {CONFIG_FILE} on prod-1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("resume") / "demo"
    prefix = f"ferryman-pytest-resume-{uuid.uuid4().hex[:6]}"
    made = up(workdir, prefix=prefix)
    try:
        yield made
    finally:
        down(workdir, prefix)


def sh(d: Demo, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts["prod"], script, check=check)


def prod_state(d: Demo) -> dict[str, object]:
    """Everything 'wholly old' or 'wholly new' is judged on. Run mode keeps its container
    (same id); compose may recreate it, so compose is judged by image and state."""
    names = sh(d, "docker ps -a --format '{{.Names}} {{.Image}} {{.State}}'").split("\n")
    return {
        "containers": sorted(n for n in names if n),
        "web_id": sh(d, "docker inspect --format '{{.Id}}' web").strip(),
        "web_image": sh(d, "docker inspect --format '{{.Image}}' web").strip(),
        "api_image": sh(d, "docker inspect --format '{{.Image}}' shop-api").strip(),
        "serves": sh(d, "curl -s -m 5 http://127.0.0.1:8080/", check=False).strip(),
        "base_url": json.loads(sh(d, f"cat {CONFIG_FILE}"))["base_url"],
        "state": sorted(set(sh(d, "ls /var/lib/ferryman/shop", check=False).split())
                        & {"lock", "journal.json"}),
    }


def kill_at(d: Demo, step: str, *command: str) -> str:
    """Starts a ferryman command (a release by default) and kills it (SIGKILL) as soon as it
    announces `step`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferryman", "-c", str(d.config),
         *(command or ("release", "test", "prod")), "--yes"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        seen.append(line)
        if re.search(rf"step \d+/\d+ {re.escape(step)}", line):
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(seen)
    else:
        raise AssertionError(f"{command or 'the release'} ended before {step}:\n{''.join(seen)}")
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return "".join(seen)


def test_killed_at_each_step_abort_puts_prod_back(demo: Demo) -> None:
    old = prod_state(demo)
    assert old["serves"] == "app v1" and "journal.json" not in old["state"]
    for step in STEPS:
        kill_at(demo, step)
        left = sh(demo, "cat /var/lib/ferryman/shop/journal.json")
        assert json.loads(left)["flow"] == "release", step

        # The next release names the unfinished one and changes nothing.
        again = ferryman(demo.config, "release", "test", "prod", "--yes")
        assert again.code == 3, again.err
        assert "unfinished release" in again.err and "ferryman abort prod" in again.err

        abort = ferryman(demo.config, "abort", "prod", "--yes")
        assert abort.code == 0, f"killed at {step}:\n{abort.err}"
        assert prod_state(demo) == old, f"killed at {step}:\n{abort.err}"

    history = ferryman(demo.config, "history", "prod", "--json")
    results = [r["result"] for r in history.json()]
    assert results == ["aborted"] * len(STEPS)
    # Nothing is left to abort, and the release then goes through.
    assert ferryman(demo.config, "abort", "prod", "--yes").code == 2
    run = ferryman(demo.config, "release", "test", "prod", "--yes")
    assert run.code == 0, run.err
    assert prod_state(demo)["serves"] == "app v2"
    back = ferryman(demo.config, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    assert prod_state(demo)["serves"] == "app v1"


@pytest.mark.parametrize("step", ["stop old web on prod-1", "health of web on prod-1",
                                  "health of api on prod-1"])
def test_killed_then_resumed_prod_is_wholly_new(demo: Demo, step: str) -> None:
    before = prod_state(demo)
    assert before["serves"] == "app v1"
    kill_at(demo, step)
    run = ferryman(demo.config, "resume", "prod", "--yes")
    assert run.code == 0, run.err
    after = prod_state(demo)
    v2 = demo.lab.sh(demo.hosts["test"], "docker inspect --format '{{.Image}}' web").strip()
    assert after["web_image"] == after["api_image"] == v2
    assert after["serves"] == "app v2" and after["base_url"].startswith("http://10.0.0.57")
    assert "journal.json" not in after["state"] and "lock" not in after["state"]
    record = ferryman(demo.config, "history", "prod", "--json").json()[-1]
    assert record["result"] == "ok" and {s["mode"] for s in record["services"]} == {
        "run", "compose"}
    # The old web is kept once, under the resumed release's id, for rollback.
    assert f"web.ferryman-{record['id']} ferryman-app:v1 exited" in after["containers"]
    assert [s.get("kept") for s in record["services"] if s["mode"] == "run"] == [
        f"web.ferryman-{record['id']}"]
    # The next release has nothing to do; rollback returns to v1 for the next case.
    assert ferryman(demo.config, "release", "test", "prod", "--yes").code == 0
    back = ferryman(demo.config, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    assert prod_state(demo)["serves"] == "app v1"


# --- a restore killed at each step ----------------------------------------------------------

DATA = """\
data:
  volumes: [shopdata]
  paths: [/srv/shop/files]
  stop: [web, shop-api]
  backup_dir: /var/lib/ferryman/backups
"""
RESTORE_STEPS = ["stop business containers on prod-1", "safety backup",
                 "unpack volume shopdata", "swap in volume shopdata",
                 "unpack folder /srv/shop/files", "swap in folder /srv/shop/files",
                 f"guard base_url in {CONFIG_FILE} on prod-1",
                 "start business containers on prod-1", "remove replaced data on prod-1"]


def tree(d: Demo) -> str:
    """sha256 of every data file, with its path: what 'no byte lost' is judged on."""
    return sh(d, "cd /var/lib/docker/volumes/shopdata/_data && find . -type f | sort | "
                 "xargs -r sha256sum; cd /srv/shop/files && find . -type f | sort | "
                 "xargs -r sha256sum")


def running(d: Demo) -> list[str]:
    return sorted(sh(d, "docker ps --format '{{.Names}}'").split())


def test_restore_killed_at_each_step_loses_no_byte(demo: Demo) -> None:
    sh(demo, "docker volume create shopdata >/dev/null && mkdir -p /srv/shop/files/sub && "
             "head -c 400000 /dev/urandom > /var/lib/docker/volumes/shopdata/_data/a.bin && "
             "echo one > /srv/shop/files/sub/x.txt")
    if "data:" not in demo.config.read_text():
        demo.config.write_text(demo.config.read_text() + DATA)
    assert ferryman(demo.config, "backup", "prod").code == 0
    backed = tree(demo)
    bid = ferryman(demo.config, "backups", "prod", "--json").json()[-1]["id"]
    # PROD's data moves on after the backup: a restore would bring `backed` back.
    sh(demo, "echo two > /srv/shop/files/sub/x.txt && echo new > /srv/shop/files/y.txt && "
             "head -c 1000 /dev/urandom > /var/lib/docker/volumes/shopdata/_data/a.bin")
    old, up_before = tree(demo), running(demo)
    assert old != backed
    for step in RESTORE_STEPS:
        kill_at(demo, step, "restore", "prod", bid)
        refused = ferryman(demo.config, "restore", "prod", bid, "--yes")
        assert refused.code == 3 and "unfinished restore" in refused.err, refused.err
        abort = ferryman(demo.config, "abort", "prod", "--yes")
        assert abort.code == 0, f"killed at {step}:\n{abort.err}"
        assert tree(demo) == old, f"killed at {step}:\n{abort.err}"
        assert running(demo) == up_before, f"killed at {step}:\n{abort.err}"
        assert "journal.json" not in sh(demo, "ls /var/lib/ferryman/shop")
    # Killed once more, then resumed: the restore is done, whole, from the start again.
    kill_at(demo, "swap in folder /srv/shop/files", "restore", "prod", bid)
    run = ferryman(demo.config, "resume", "prod", "--yes")
    assert run.code == 0, run.err
    assert "running it again" in run.err
    assert tree(demo) == backed and running(demo) == up_before
    assert "journal.json" not in sh(demo, "ls /var/lib/ferryman/shop")
    # And the next restore goes through as any other.
    assert ferryman(demo.config, "restore", "prod", bid, "--yes").code == 0


def test_sync_killed_abort_puts_both_sides_back(demo: Demo) -> None:
    """sync-data changes both sides: TEST's containers stop for the snapshot, PROD's data is
    replaced. Killed anywhere, abort (on PROD, where the hint points) undoes both."""
    test = demo.hosts["test"]
    demo.lab.sh(test, "docker volume create shopdata >/dev/null && mkdir -p /srv/shop/files && "
                      "echo from-test > /srv/shop/files/t.txt")
    sh(demo, "docker volume create shopdata >/dev/null && mkdir -p /srv/shop/files")
    if "data:" not in demo.config.read_text():
        demo.config.write_text(demo.config.read_text() + DATA)
    old, up_prod = tree(demo), running(demo)
    up_test = sorted(demo.lab.sh(test, "docker ps --format '{{.Names}}'").split())
    for step in ("stop business containers on test-1", "send backup",
                 "swap in folder /srv/shop/files"):
        kill_at(demo, step, "sync-data", "test", "prod")
        # FROM is refused too, pointed at the environment whose abort ends it.
        refused = ferryman(demo.config, "restart", "test", "web", "--yes")
        assert refused.code == 3 and "ferryman abort prod" in refused.err, refused.err
        abort = ferryman(demo.config, "abort", "prod", "--yes")
        assert abort.code == 0, f"killed at {step}:\n{abort.err}"
        assert tree(demo) == old and running(demo) == up_prod, f"killed at {step}"
        assert sorted(demo.lab.sh(test, "docker ps --format '{{.Names}}'").split()) == up_test
        for host in (test, demo.hosts["prod"]):
            assert "journal.json" not in demo.lab.sh(host, "ls /var/lib/ferryman/shop")
    run = ferryman(demo.config, "sync-data", "test", "prod", "--yes")
    assert run.code == 0, run.err
    assert "from-test" in sh(demo, "cat /srv/shop/files/t.txt")
