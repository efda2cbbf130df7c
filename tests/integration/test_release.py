"""`ferryman release`, `rollback`, `history`, `unlock` on real hosts.

Each test gets its own TEST and PROD, deployed as the demo is: TEST runs v2, PROD v1; `web`
by docker run, `api` by docker-compose; PROD's config file names TEST (polluted).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine import FIELDS, Scene, differences, full_options
from labenv import Run, ferryman, kinds_of, on_both_kinds

from ferryman.lab import build_app_image
from ferryman.lab.demo import ADDRESSES, CONFIG_FILE, Demo, down, up


@pytest.fixture()
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    prefix = f"ferryman-pytest-rel-{uuid.uuid4().hex[:6]}"
    made = up(tmp_path / "demo", prefix=prefix, kinds=kinds_of(request))
    try:
        yield made
    finally:
        down(tmp_path / "demo", prefix)


def sh(d: Demo, role: str, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def inspect(d: Demo, role: str, name: str) -> dict:
    return json.loads(sh(d, role, f"docker inspect {name}"))[0]


def containers(d: Demo, role: str) -> dict[str, str]:
    """name -> id of every container on the host: what 'changes nothing' is checked against."""
    out = sh(d, role, "docker ps -a --no-trunc --format '{{.Names}} {{.ID}} {{.Status}}'")
    return {ln.split()[0]: ln.split()[1] for ln in out.splitlines()}


def serves(d: Demo, role: str, port: int = 8080) -> str:
    return sh(d, role, f"curl -s -m 5 http://127.0.0.1:{port}/", check=False).strip()


def release(d: Demo, *args: str) -> Run:
    return ferryman(d.config, "release", "test", "prod", *args)


@on_both_kinds
def test_release_run_compose_and_guard(demo: Demo) -> None:
    v2 = inspect(demo, "test", "web")["Image"]
    old_web = inspect(demo, "prod", "web")["Id"]
    assert serves(demo, "prod") == "app v1"

    run = release(demo, "--yes")
    assert run.code == 0, run.err
    for n, name in enumerate(["lock prod on prod-1", "transfer images test-1 -> prod-1",
                              "stop old web on prod-1", "start new web on prod-1",
                              "health of web on prod-1", "compose up api on prod-1",
                              "health of api on prod-1",
                              "keep api in its compose project on prod-1"], 1):
        assert f"step {n}/9 {name}" in run.err
    assert f"step 9/9 guard base_url in {CONFIG_FILE} on prod-1" in run.err

    # Run mode: new container from v2; the old one kept, stopped, restart policy off.
    web = inspect(demo, "prod", "web")
    assert web["Image"] == v2 and web["State"]["Running"]
    assert web["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    kept = [n for n in containers(demo, "prod") if n.startswith("web.ferryman-r")]
    assert len(kept) == 1
    old = inspect(demo, "prod", kept[0])
    assert old["Id"] == old_web and not old["State"]["Running"]
    assert old["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert serves(demo, "prod") == "app v2"

    # Compose mode: same project, pinned by an override; the operator's file names the new
    # image too (a plain `docker-compose up -d` keeps it), its previous text kept beside it.
    api = inspect(demo, "prod", "shop-api")
    assert api["Image"] == v2
    labels = api["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == "shop"
    assert "/var/lib/ferryman/shop/compose/" in labels["com.docker.compose.project.config_files"]
    assert 'image: "ferryman-app:v2"' in sh(demo, "prod", "cat /opt/shop/docker-compose.yml")
    assert "image: ferryman-app:v1" in sh(demo, "prod",
                                          "cat /opt/shop/docker-compose.yml.ferryman-*.bak")

    # Guard: PROD's base_url named TEST; now PROD, with a backup of the polluted file.
    cfg = json.loads(sh(demo, "prod", f"cat {CONFIG_FILE}"))
    assert cfg["base_url"] == f"http://{ADDRESSES['prod']}:9380"
    backups = sh(demo, "prod", f"ls {CONFIG_FILE}.ferryman-*.bak").split()
    assert len(backups) == 1
    assert ADDRESSES["test"] in sh(demo, "prod", f"cat {backups[0]}")
    # The container reads the file through a bind mount: it sees the new value.
    assert ADDRESSES["prod"] in sh(demo, "prod", "docker exec shop-api cat /www/config.json")

    hist = ferryman(demo.config, "history", "prod", "--json")
    assert hist.code == 0, hist.err
    (record,) = hist.json()
    assert record["result"] == "ok" and record["from"] == "test" and record["to"] == "prod"
    modes = {s["service"]: s["mode"] for s in record["services"]}
    assert modes == {"web": "run", "api": "compose"}
    assert all(s["new"]["id"] == v2 for s in record["services"])
    assert not sh(demo, "prod", "ls /var/lib/ferryman/shop/").count("lock")

    # Again: nothing to do, nothing sent, nothing recreated.
    before = containers(demo, "prod")
    again = release(demo, "--yes")
    assert again.code == 0, again.err
    assert "already runs" in again.err and "transfer images" not in again.err
    assert containers(demo, "prod") == before


def test_failed_health_rolls_everything_back(demo: Demo) -> None:
    # v3 answers 404 on /health: its compose healthcheck and HTTP check both fail.
    bad = build_app_image("v3-sick", "app v3", cmd='["httpd", "-f", "-p", "8080", "-h", "/tmp"]')
    demo.lab.load_image(demo.hosts["test"], bad)
    sh(demo, "test", "cd /opt/shop && sed -i 's/ferryman-app:v2/ferryman-app:v3-sick/' "
       "docker-compose.yml && docker-compose up -d")
    before = containers(demo, "prod")
    v1 = inspect(demo, "prod", "web")["Image"]

    run = release(demo, "--yes")
    assert run.code == 1, run.err
    assert "FAILED step 7/9 health of api on prod-1" in run.err
    assert "undo start new web on prod-1" in run.err
    assert "undo stop old web on prod-1" in run.err
    # Every container is the one from before, running v1 again.
    after = containers(demo, "prod")
    assert after["web"] == before["web"]
    assert inspect(demo, "prod", "web")["State"]["Running"]
    assert inspect(demo, "prod", "web")["Image"] == v1
    assert inspect(demo, "prod", "shop-api")["Image"] == v1
    assert serves(demo, "prod") == "app v1"
    assert not [n for n in after if ".ferryman-" in n]
    # v3 never stays on PROD.
    assert "ferryman-app:v3-sick" not in sh(demo, "prod", "docker images --format "
                                       "'{{.Repository}}:{{.Tag}}'")
    record = ferryman(demo.config, "history", "prod", "--json").json()[-1]
    assert record["result"] == "failed" and "health of api" in record["failed_step"]


def test_policy_and_bad_input_change_nothing(demo: Demo) -> None:
    before = containers(demo, "prod")
    images_before = sh(demo, "prod", "docker images -q --no-trunc | sort")
    sh(demo, "test", "docker tag ferryman-app:v2 ferryman-app:main-abc123 && "
       "docker rm -f web && docker run -d --name web -p 8080:8080 ferryman-app:main-abc123")
    run = release(demo, "--yes")
    assert run.code == 2
    assert "prod takes only tags matching v*" in run.err and "main-abc123" in run.err

    for args, message in [
        (["test", "test"], "FROM and TO are both 'test'"),
        (["test", "staging"], "unknown environment 'staging'"),
        (["test", "prod", "--service", "nope"], "unknown service nope"),
    ]:
        bad = ferryman(demo.config, "release", *args, "--yes")
        assert bad.code == 2, bad.err
        assert message in bad.err

    sh(demo, "test", "docker stop shop-api")
    stopped = ferryman(demo.config, "release", "test", "prod", "--service", "api", "--yes")
    assert stopped.code == 2
    assert "api is not running on test (test-1: exited)" in stopped.err

    assert containers(demo, "prod") == before
    assert sh(demo, "prod", "docker images -q --no-trunc | sort") == images_before
    assert sh(demo, "prod", "ls /var/lib/ferryman/shop 2>/dev/null || true").strip() == ""


def test_dry_run_prints_commands_and_changes_nothing(demo: Demo) -> None:
    before = containers(demo, "prod")
    run = release(demo, "--dry-run")
    assert run.code == 0, run.err
    assert "docker create --name web" in run.err
    assert "ferryman-app:v2" in run.err
    assert "docker-compose -p shop --project-directory /opt/shop" in run.err
    # The guard's restart names the container compose gave service api on PROD.
    api = sh(demo, "prod", "docker ps --filter label=com.docker.compose.service=api "
                           "--format '{{.Names}}'").strip()
    assert f"docker restart {api}  # when base_url" in run.err, run.err
    assert "nothing was changed" in run.err
    assert containers(demo, "prod") == before
    assert sh(demo, "prod", "ls /var/lib/ferryman/shop 2>/dev/null || true").strip() == ""


@on_both_kinds
def test_bootstrap_when_prod_container_was_deleted(demo: Demo) -> None:
    sh(demo, "test", "docker rm -f web && docker run -d --name web -p 8080:8080 "
       f"-e APP_URL=http://{ADDRESSES['test']}:8080/ -e KEEP=1 "
       "-v /opt/shop/app_config.json:/www/config.json:ro --restart always ferryman-app:v2")
    sh(demo, "prod", "docker rm -f web")
    run = release(demo, "--yes", "--service", "web")
    assert run.code == 0, run.err
    assert "create web on prod-1" in run.err
    web = inspect(demo, "prod", "web")
    env = web["Config"]["Env"]
    assert f"APP_URL=http://{ADDRESSES['prod']}:8080/" in env and "KEEP=1" in env
    assert web["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert web["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert "/opt/shop/app_config.json" in run.err  # carried over as it was, and said so
    assert serves(demo, "prod") == "app v2"
    record = ferryman(demo.config, "history", "prod", "--json").json()[-1]
    assert record["services"][0]["mode"] == "bootstrap"


@on_both_kinds
def test_rollback_returns_to_previous_release(demo: Demo) -> None:
    old_web = inspect(demo, "prod", "web")["Id"]
    v1 = inspect(demo, "prod", "shop-api")["Image"]
    assert release(demo, "--yes").code == 0
    new_web = inspect(demo, "prod", "web")["Id"]

    run = ferryman(demo.config, "rollback", "prod", "--yes")
    assert run.code == 0, run.err
    assert inspect(demo, "prod", "web")["Id"] == old_web
    assert inspect(demo, "prod", "web")["HostConfig"]["RestartPolicy"]["Name"] == \
        "unless-stopped"
    assert inspect(demo, "prod", "shop-api")["Image"] == v1
    assert serves(demo, "prod") == "app v1"
    # The release's container is kept in turn, so the rollback itself can be undone.
    kept = [n for n, i in containers(demo, "prod").items() if i == new_web]
    assert kept and kept[0].startswith("web.ferryman-r")
    records = ferryman(demo.config, "history", "prod", "--json").json()
    assert [r["kind"] for r in records] == ["release", "rollback"]
    assert records[1]["rolls_back"] == records[0]["id"]
    shown = ferryman(demo.config, "history", "prod")
    assert shown.code == 0, shown.err
    assert f"{records[0]['id']} release test -> prod" in shown.out
    assert f"(undoes {records[0]['id']})" in shown.out
    assert "web@prod-1 run:" in shown.out
    # Nothing left to roll back.
    again = ferryman(demo.config, "rollback", "prod", "--yes")
    assert again.code == 2 and "no release on prod to roll back" in again.err


def test_lock_held_refuses_and_unlock_breaks_it(demo: Demo) -> None:
    owner = {"owner": "ana@laptop", "since": "2026-11-23T08:00:00+00:00",
             "command": "release test prod (r1)", "token": "x"}
    sh(demo, "prod", "mkdir -p /var/lib/ferryman/shop/lock && printf '%s' "
       f"'{json.dumps(owner)}' > /var/lib/ferryman/shop/lock/owner.json")
    before = containers(demo, "prod")
    run = release(demo, "--yes")
    assert run.code == 3, run.err
    assert "prod is locked by ana@laptop since 2026-11-23T08:00:00+00:00" in run.err
    assert "ferryman unlock prod" in run.err
    assert containers(demo, "prod") == before
    # The refused run must not free someone else's lock.
    assert "ana@laptop" in sh(demo, "prod", "cat /var/lib/ferryman/shop/lock/owner.json")

    unlock = ferryman(demo.config, "unlock", "prod", "--yes")
    assert unlock.code == 0, unlock.err
    assert "ana@laptop" in unlock.err
    assert release(demo, "--yes").code == 0


def test_connection_cut_during_transfer_leaves_prod_untouched(demo: Demo) -> None:
    # 300 MB of random bytes: long enough to cut the stream midway.
    big = build_app_image("v9", "app v9", blob_mb=300)
    demo.lab.load_image(demo.hosts["test"], big)
    sh(demo, "test", f"docker rm -f web && docker run -d --name web -p 8080:8080 {big}")
    before = containers(demo, "prod")
    images_before = sh(demo, "prod", "docker images -q --no-trunc | sort")

    proc = subprocess.Popen(
        [sys.executable, "-m", "ferryman", "-c", str(demo.config), "release", "test", "prod",
         "--yes", "--service", "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "docker load" in sh(demo, "prod", "ps -eo args", check=False):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the transfer never started")
        # Kill PROD's sshd session processes: every channel of ferryman's connection dies.
        sh(demo, "prod", "pkill -KILL -f 'sshd: root@notty'", check=False)
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    # The connection to PROD was lost: exit 3, as for a host unreachable from the start.
    assert proc.returncode == 3, err
    assert "FAILED step 2/6 transfer images test-1 -> prod-1" in err
    assert containers(demo, "prod") == before
    assert sh(demo, "prod", "docker images -q --no-trunc | sort") == images_before
    # The lock was given back over a new connection: PROD is free for the next try.
    assert "lock" not in sh(demo, "prod", "ls /var/lib/ferryman/shop")
    assert serves(demo, "prod") == "app v1"


def test_release_recreates_every_option(demo: Demo) -> None:
    """A run-mode container with nearly every `docker create` option: after the release,
    PROD's new container inspects as the old one did, field by field, image aside."""
    images = {"test": "ferryman-app:v2", "prod": "ferryman-app:v1"}
    for role, image in images.items():
        sh(demo, role, "mkdir -p /opt/full/bind && echo hi > /opt/full/bind/conf.txt && "
           "docker network create --subnet 10.231.7.0/24 neta >/dev/null && "
           "docker network create --subnet 10.232.7.0/24 netb >/dev/null && "
           "docker volume create fulldata >/dev/null")
        scene = Scene("x", Path("/opt/full/bind"), "neta", "netb", 7, "fulldata")
        host = demo.hosts[role]
        demo.lab.exec(host, ["docker", "create", "--name", "full", *full_options(scene), image,
                             "-f", "-p", "8080", "-h", "/www"])
        demo.lab.exec(host, ["docker", "network", "connect", "--alias", "web-b", "--ip",
                             scene.ip_b(20), "netb", "full"])
        demo.lab.exec(host, ["docker", "start", "full"])
    cfg = demo.config.read_text().replace(
        "services:\n", "services:\n  full:\n    health: {docker: true, interval: 1s}\n", 1)
    demo.config.write_text(cfg)
    before = inspect(demo, "prod", "full")

    run = release(demo, "--yes", "--service", "full")
    assert run.code == 0, run.err
    after = inspect(demo, "prod", "full")
    v2 = inspect(demo, "test", "full")["Image"]
    assert len(FIELDS) >= 30
    assert differences(before, after, {"Config.Image": images["test"], "Image": v2}) == []
    assert after["Id"] != before["Id"]


def test_kept_containers_are_pruned_beyond_keep_releases(demo: Demo) -> None:
    demo.config.write_text(demo.config.read_text().replace("project: shop",
                                                           "project: shop\nkeep_releases: 1"))
    original = inspect(demo, "prod", "web")["Id"]
    assert release(demo, "--yes", "--service", "web").code == 0
    first = inspect(demo, "prod", "web")["Id"]
    # TEST moves back to v1: the next release sets the v2 container aside in turn.
    sh(demo, "test", "docker rm -f web && docker run -d --init --name web -p 8080:8080 "
       "ferryman-app:v1")
    time.sleep(1.1)  # release ids have one-second resolution
    run = release(demo, "--yes", "--service", "web")
    assert run.code == 0, run.err
    assert "pruned 1 kept container(s)" in run.err
    kept = {n: i for n, i in containers(demo, "prod").items() if n.startswith("web.ferryman-")}
    assert list(kept.values()) == [first]  # the newest kept one stays
    assert original not in containers(demo, "prod").values()
    # Its image is still used by the live container, so it stays; nothing else was touched.
    assert "ferryman-app:v1" in sh(demo, "prod", "docker images --format "
                                   "'{{.Repository}}:{{.Tag}}'")
