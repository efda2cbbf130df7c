"""The release lifecycle on real hosts: hooks around the switch (a migration that fails changes
nothing; one that changes data makes the release back up first, and rollback restores it).

One demo for the module (TEST v2, PROD v1), its `web` given a named volume `shopdata` on PROD
that the migration writes to; the tests run in order and each says what it starts from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labenv import TRIXIE, Run, ferryman

from ferryman.lab import build_app_image
from ferryman.lab.demo import CONFIG_FILE, Demo, compose_up, down, up

V1 = "ferryman-app:v1"
DATA = "data:\n  volumes: [shopdata]\n  stop: [web]\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    prefix = f"ferryman-pytest-life-{uuid.uuid4().hex[:6]}"
    where = tmp_path_factory.mktemp("life") / "demo"
    made = up(where, prefix=prefix)
    try:
        # PROD's web keeps its data in a named volume, as an app with a database file would.
        sh(made, "prod", "docker rm -f web >/dev/null && "
           f"docker run --rm -v shopdata:/data {V1} sh -c 'echo v1-schema > /data/schema' && "
           "docker run -d --name web -p 8080:8080 --init --restart unless-stopped "
           "-e APP_MODE=web -e UPSTREAM=http://10.0.0.58:9380 "
           f"-v {CONFIG_FILE}:/www/config.json:ro -v shopdata:/data {V1}")
        yield made
    finally:
        down(where, prefix)


def sh(d: Demo, role: str, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def config(d: Demo, name: str, web: str = "", extra: str = "") -> Path:
    """The demo's ferryman.yml with more keys for `web` and more sections."""
    text = d.config.read_text().replace("services:\n  web:\n", "services:\n  web:\n" + web)
    path = d.config.parent / name
    path.write_text(text + extra)
    return path


def state(d: Demo) -> tuple[dict[str, str], list[str]]:
    """Every container (name -> id, image) and every tagged image on PROD."""
    ps = sh(d, "prod", "docker ps -a --no-trunc --format '{{.Names}} {{.ID}} {{.Image}}'")
    images = sh(d, "prod", "docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}' "
                "| grep -v '<none>' | sort")
    return ({ln.split()[0]: " ".join(ln.split()[1:]) for ln in ps.splitlines()},
            images.split("\n"))


def volume_file(d: Demo, path: str) -> str:
    return sh(d, "prod", f"docker run --rm -v shopdata:/data {V1} cat {path}",
              check=False).strip()


def release(cfg: Path, *args: str) -> Run:
    return ferryman(cfg, "release", "test", "prod", "--yes", *args)


def image_of(d: Demo, role: str, name: str) -> str:
    return json.loads(sh(d, role, f"docker inspect {name}"))[0]["Image"]


def test_failing_migration_changes_nothing(demo: Demo) -> None:
    cfg = config(demo, "failing.yml", web="    before_switch:\n      run: [sh, -c, "
                 "'echo migrating $APP_MODE; ls /data; echo no such table >&2; exit 3']\n")
    before = state(demo)
    dry = release(cfg, "--dry-run")
    assert dry.code == 0, dry.err
    hook_line = next(ln for ln in dry.err.splitlines()
                     if "docker run --rm --name web.ferryman-" in ln)
    assert "-before " in hook_line and "--entrypoint sh ferryman-app:v2 -c" in hook_line
    assert "-v shopdata:/data" in hook_line or "src=shopdata" in hook_line
    assert "-p " not in hook_line and "--restart" not in hook_line
    assert state(demo) == before
    run = release(cfg)
    assert run.code == 1, run.err
    # the hook ran in the new image, with web's env and volume, its output in the log
    assert "before_switch web | migrating web" in run.err
    assert "before_switch web | schema" in run.err
    assert "before_switch web | no such table" in run.err
    assert "before_switch web failed on prod-1 (exit 3)" in run.err
    assert "stop old web" not in run.err and "compose up api" not in run.err
    assert state(demo) == before
    assert volume_file(demo, "/data/schema") == "v1-schema"
    hist = ferryman(cfg, "history", "prod", "--json").json()
    assert hist[-1]["result"] == "failed" and "before_switch" in hist[-1]["failed_step"]


def test_hook_past_its_timeout_is_removed_and_changes_nothing(demo: Demo) -> None:
    cfg = config(demo, "slow.yml", web="    before_switch:\n      run: [sh, -c, 'echo slow; "
                 "exec sleep 300']\n      timeout: 2s\n")
    before = state(demo)
    t0 = time.monotonic()
    run = release(cfg, "-s", "web")
    assert run.code == 1, run.err
    assert time.monotonic() - t0 < 40
    assert "before_switch web | slow" in run.err
    assert "ran past its timeout of 2s; its container was removed" in run.err
    assert state(demo) == before  # the hook's container is gone too


def test_migration_with_backup_then_rollback_restores_data(demo: Demo) -> None:
    v2 = image_of(demo, "test", "web")
    cfg = config(demo, "migrate.yml", web=(
        "    before_switch:\n"
        "      run: [sh, -c, 'echo v2-schema >> /data/schema && cat /data/schema']\n"
        "      changes_data: true\n"
        "      timeout: 60s\n"
        "    after_switch: [sh, -c, 'echo warmed > /data/after']\n"), extra=DATA)
    run = release(cfg, "-s", "web")
    assert run.code == 0, run.err
    assert "before_switch web | v2-schema" in run.err
    assert image_of(demo, "prod", "web") == v2
    assert volume_file(demo, "/data/schema") == "v1-schema\nv2-schema"
    assert volume_file(demo, "/data/after") == "warmed"
    # the order: backup (web stopped around it), the hook, the switch, then after_switch
    pos = [run.err.find(f"{n}") for n in (
        "stop business containers on prod-1", "backup prod on prod-1 before the hooks",
        "before_switch hook of web on prod-1",
        "start new web on prod-1", "health of web", "after_switch hook of web on prod-1")]
    assert -1 not in pos and pos == sorted(pos), pos
    (record,) = [r for r in ferryman(cfg, "history", "prod", "--json").json()
                 if r["result"] == "ok"]
    bid = record["backup"]
    assert bid.startswith("b") and record["hooks"][0]["when"] == "before_switch"
    assert bid in sh(demo, "prod", "ls /var/lib/ferryman/backups/shop/")
    shown = ferryman(cfg, "history", "prod")
    assert f"backup before the hooks: {bid}" in shown.out
    assert "before_switch web on prod-1: sh -c" in shown.out and "(changes data)" in shown.out

    # Without a terminal and without --yes, a rollback that restores data refuses.
    refused = ferryman(cfg, "rollback", "prod")
    assert refused.code == 2, refused.err
    assert f"verify backup {bid} on prod-1" in refused.err  # what it would do, shown first
    assert "restoring data asks for confirmation" in refused.err
    assert image_of(demo, "prod", "web") == v2

    back = ferryman(cfg, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    assert f"backup {bid} is restored first" in back.err
    assert volume_file(demo, "/data/schema") == "v1-schema"
    assert volume_file(demo, "/data/after") == ""
    assert sh(demo, "prod", "docker inspect --format '{{.Config.Image}}' web").strip() == V1


MAIN = "ferryman-app:main-1a2b3c"
WEB_RUN = ("docker run -d --name web -p 8080:8080 --init --restart unless-stopped "
           f"-e APP_MODE=web -v {CONFIG_FILE}:/www/config.json:ro")


def test_tag_meets_prod_policy_without_a_registry(demo: Demo) -> None:
    # TEST runs a build named after its commit, as CI leaves it; PROD takes only v*.
    sh(demo, "test", f"docker tag ferryman-app:v2 {MAIN} && docker rm -f web >/dev/null && "
       f"{WEB_RUN} {MAIN}")
    main_id = image_of(demo, "test", "web")
    before = state(demo)
    refused = release(demo.config, "-s", "web")
    assert refused.code == 2, refused.err
    assert "prod takes only tags matching v*; refused: web: ferryman-app:main-1a2b3c" in refused.err
    bad = release(demo.config, "-s", "web", "--tag", "-x")
    assert bad.code == 2 and "--tag '-x' is not a Docker tag" in bad.err
    assert state(demo) == before

    run = release(demo.config, "-s", "web", "--tag", "v1.4.2")
    assert run.code == 0, run.err
    assert "tag images on prod-1" in run.err
    web = json.loads(sh(demo, "prod", "docker inspect web"))[0]
    assert web["Config"]["Image"] == "ferryman-app:v1.4.2" and web["Image"] == main_id
    assert sh(demo, "prod", "docker image inspect --format '{{.Id}}' ferryman-app:v1.4.2"
              ).strip() == main_id
    # FROM shows which of its builds became v1.4.2.
    assert "ferryman-app:v1.4.2 names web's image on test-1 (test) too" in run.err
    assert sh(demo, "test", "docker image inspect --format '{{.Id}}' ferryman-app:v1.4.2"
              ).strip() == main_id
    record = ferryman(demo.config, "history", "prod", "--json").json()[-1]
    assert record["tag"] == "v1.4.2" and record["from"] == "test"
    assert record["services"][0]["new"] == {"ref": "ferryman-app:v1.4.2", "id": main_id}
    back = ferryman(demo.config, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    assert sh(demo, "prod", "docker inspect --format '{{.Config.Image}}' web").strip() == V1


def test_accepts_from_only_what_the_source_released_healthy(demo: Demo) -> None:
    policy = '      allowed_tags: ["v*"]\n'
    text = demo.config.read_text()
    only_test = demo.config.parent / "accepts.yml"
    only_test.write_text(text.replace(policy, policy + "      accepts_from: [test]\n"))
    soaked = demo.config.parent / "soak.yml"
    soaked.write_text(text.replace(policy, policy + "      accepts_from: [test]\n"
                                   "      soak: 1h\n"))
    before = state(demo)
    refused = release(only_test, "-s", "web", "--tag", "v1.4.3")
    assert refused.code == 2, refused.err
    assert ("prod takes only images released and healthy on test; refused: web: "
            f"{MAIN} (") in refused.err
    assert "has no successful release to test in its history" in refused.err
    assert state(demo) == before

    # TEST gets PROD's v1 by a release of its own: now its history shows v1 released there.
    to_test = ferryman(only_test, "release", "prod", "test", "-s", "web", "--yes")
    assert to_test.code == 0, to_test.err
    too_soon = release(soaked, "-s", "web")
    assert too_soon.code == 2 and "less than soak 1h00m" in too_soon.err
    ok = release(only_test, "-s", "web")
    assert ok.code == 0, ok.err
    assert "web on prod-1 already runs ferryman-app:v1" in ok.err
    # A release tag names one image: v1.4.2 is on PROD already, for v2; TEST now runs v1.
    before = state(demo)
    taken = release(demo.config, "-s", "web", "--tag", "v1.4.2")
    assert taken.code == 2 and "ferryman-app:v1.4.2 already names another image" in taken.err
    assert state(demo) == before


# Serves, then (without STAY) dies 6 s later: healthy at the gate, dead inside the watch.
DIES = ('["sh", "-c", "httpd -p 8080 -h /www; sleep 6; '
        '[ -n \\"$STAY\\" ] && exec sleep 100000; exit 1"]')


def test_watch_rolls_back_a_service_that_dies_then_ctrl_c_keeps_one(demo: Demo) -> None:
    dies = build_app_image("v5-dies", "app v5", cmd=DIES)
    demo.lab.load_image(demo.hosts["test"], dies)
    sh(demo, "test", f"docker rm -f web >/dev/null && {WEB_RUN} -e STAY=1 {dies}")
    watching = demo.config.parent / "watch.yml"
    watching.write_text(demo.config.read_text().replace(
        "  prod:\n    address:", "  prod:\n    watch: 20s\n    address:"))
    old = json.loads(sh(demo, "prod", "docker inspect web"))[0]
    t0 = time.monotonic()
    run = release(watching, "-s", "web")
    assert run.code == 1, run.err
    assert time.monotonic() - t0 < 60
    assert "health of web on prod-1" in run.err and "watch prod for 20s" in run.err
    assert "web on prod-1 failed" in run.err and "restarted" in run.err
    now = json.loads(sh(demo, "prod", "docker inspect web"))[0]
    assert now["Id"] == old["Id"] and now["State"]["Running"]  # the previous one, back
    assert now["Config"]["Image"] == V1
    record = ferryman(watching, "history", "prod", "--json").json()[-1]
    assert record["result"] == "failed" and record["watch"]["result"] == "failed"
    assert record["watch"]["service"] == "web" and record["watch"]["after"] < 20

    # A healthy release; Ctrl-C inside its watch ends the watch and keeps the release.
    sh(demo, "test", f"docker rm -f web >/dev/null && {WEB_RUN} ferryman-app:v2")
    v2 = image_of(demo, "test", "web")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferryman", "-c", str(watching), "release", "test", "prod",
         "-s", "web", "--yes", "--watch", "2m"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "Ctrl-C ends the watch" in line:
            break
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 0, err
    assert "watch ended by the operator" in err and "the release is kept" in err
    assert image_of(demo, "prod", "web") == v2
    record = ferryman(watching, "history", "prod", "--json").json()[-1]
    assert record["result"] == "ok" and record["watch"]["result"] == "ended"

    # Back, and once more with a short window that passes.
    assert ferryman(watching, "rollback", "prod", "--yes").code == 0
    ok = release(watching, "-s", "web", "--watch", "3s")
    assert ok.code == 0, ok.err
    assert "healthy for 3s, no restart, no exit" in ok.err
    assert ferryman(watching, "history", "prod", "--json").json()[-1]["watch"]["result"] == "ok"
    bad = release(watching, "-s", "web", "--watch", "soon")
    assert bad.code == 2 and "--watch 'soon'" in bad.err


def test_values_per_environment_never_carry_tests(demo: Demo) -> None:
    # TEST runs a worker PROD does not have yet: a release bootstraps it from TEST's.
    sh(demo, "test", "docker run -d --name worker -e SHOP_DB=test-db -e MODE=test "
       "-e UPSTREAM=http://10.0.0.58:9380 ferryman-app:v2")
    cfg = demo.config.parent / "values.yml"
    cfg.write_text(demo.config.read_text()
                   .replace("  prod:\n    address:", "  prod:\n    env: {SHOP_DB: prod-db}\n"
                            "    address:")
                   .replace("guards:", "  worker:\n    env:\n      prod: {MODE: prod-worker}\n"
                            "guards:"))
    run = release(cfg, "-s", "worker", "-s", "web")
    assert run.code == 0, run.err
    worker = json.loads(sh(demo, "prod", "docker inspect worker"))[0]["Config"]["Env"]
    assert "SHOP_DB=prod-db" in worker and "MODE=prod-worker" in worker
    assert not any("test" in e for e in worker), worker
    assert "UPSTREAM=http://10.0.0.57:9380" in worker  # TEST's address, rewritten and said
    assert "bootstrap worker on prod-1: env UPSTREAM" in run.err
    web = json.loads(sh(demo, "prod", "docker inspect web"))[0]["Config"]["Env"]
    assert "SHOP_DB=prod-db" in web and "APP_MODE=web" in web
    # PROD's own web names TEST's address: carried as it is, and reported.
    assert ("warning: web on prod-1: carried value UPSTREAM=http://10.0.0.58:9380 names "
            "test's address 10.0.0.58") in run.err
    # Same images, new values: the containers lacking them are recreated with them.
    cfg.write_text(cfg.read_text().replace("SHOP_DB: prod-db}", "SHOP_DB: prod-db2}"))
    changed = release(cfg, "-s", "worker", "-s", "web")
    assert changed.code == 0, changed.err
    assert "transfer images" not in changed.err
    assert "web on prod-1 runs" in changed.err
    assert "without its values for prod (SHOP_DB): recreated with them" in changed.err
    for name in ("web", "worker"):
        env = json.loads(sh(demo, "prod", f"docker inspect {name}"))[0]["Config"]["Env"]
        assert "SHOP_DB=prod-db2" in env, (name, env)
    again = release(cfg, "-s", "worker", "-s", "web")
    assert again.code == 0, again.err
    assert "web on prod-1 already runs" in again.err and "stop old" not in again.err


def test_compose_release_survives_a_plain_compose_up(demo: Demo) -> None:
    prod = demo.hosts["prod"]
    dc_file = "/opt/shop/docker-compose.yml"
    v2 = image_of(demo, "test", "shop-api")
    original = sh(demo, "prod", f"cat {dc_file}")
    assert "image: ferryman-app:v1" in original
    cfg = demo.config.parent / "persist.yml"
    cfg.write_text(demo.config.read_text().replace(
        "  prod:\n    address:", "  prod:\n    persist_compose: true\n    address:"))

    run = release(cfg, "-s", "api")
    assert run.code == 0, run.err
    assert "keep api in its compose project on prod-1" in run.err
    assert 'image: "ferryman-app:v2"' in sh(demo, "prod", f"cat {dc_file}")
    compose_up(demo.lab, prod, "/opt/shop")  # what an operator does by hand, later
    assert image_of(demo, "prod", "shop-api") == v2

    back = ferryman(cfg, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    assert sh(demo, "prod", f"cat {dc_file}") == original  # byte for byte
    compose_up(demo.lab, prod, "/opt/shop")
    assert sh(demo, "prod", "docker inspect --format '{{.Config.Image}}' shop-api").strip() == V1

    # Parametrised: the variable goes into the project's .env; the compose file stays as is.
    templated = original.replace("image: ferryman-app:v1", "image: ferryman-app:${API_TAG:-v1}")
    demo.lab.exec(prod, ["sh", "-c", f"cat > {dc_file}"], input=templated.encode())
    compose_up(demo.lab, prod, "/opt/shop")
    run = release(cfg, "-s", "api")
    assert run.code == 0, run.err
    assert "API_TAG=v2 in /opt/shop/.env" in run.err
    assert sh(demo, "prod", f"cat {dc_file}") == templated
    assert sh(demo, "prod", "cat /opt/shop/.env") == "API_TAG=v2\n"
    compose_up(demo.lab, prod, "/opt/shop")
    assert image_of(demo, "prod", "shop-api") == v2
    back = ferryman(cfg, "rollback", "prod", "--yes")
    assert back.code == 0, back.err
    # there was no .env before the release: there is none again
    assert sh(demo, "prod", "test -e /opt/shop/.env && echo present || echo absent",
              check=False).strip() == "absent"
    compose_up(demo.lab, prod, "/opt/shop")
    assert sh(demo, "prod", "docker inspect --format '{{.Config.Image}}' shop-api").strip() == V1


API_HOOK = """\
    before_switch:
      - sh
      - -c
      - >-
        printf "GET /health HTTP/1.0\\r\\n\\r\\n" | nc -w 3 api 8080 | tail -n 1;
        grep -c base_url /www/config.json
"""


@pytest.mark.parametrize("kinds", [None, TRIXIE], ids=["bookworm", "trixie"])
def test_hook_of_a_compose_service_joins_its_project(tmp_path: Path,
                                                     kinds: dict[str, str] | None) -> None:
    # Docker 20.10 + docker-compose 1.29, and Docker 26.1 + compose v2: the hook runs on the
    # project's network (the service answers by its compose name) with the service's mounts.
    prefix = f"ferryman-pytest-lifek-{uuid.uuid4().hex[:6]}"
    d = up(tmp_path / "demo", prefix=prefix, kinds=kinds)
    try:
        cfg = d.config.parent / "api-hook.yml"
        cfg.write_text(d.config.read_text().replace(
            "  api:\n    container: shop-api\n", "  api:\n    container: shop-api\n" + API_HOOK))
        run = release(cfg, "-s", "api")
        assert run.code == 0, run.err
        assert "before_switch api | ok" in run.err  # reached api by name on its network
        assert "before_switch api | 1" in run.err  # read the config file api mounts
    finally:
        down(tmp_path / "demo", prefix)
