"""Hosts of both kinds in one environment pair: TEST bookworm (Docker 20.10, docker-compose
1.29) and PROD trixie (Docker 26.1, the `docker compose` 2.26 plugin).

Beside the demo app, each host runs the compose project `store` whose service `cart` sets no
container name, so compose v1 names its container `store_cart_1` and v2 `store-cart-1`. ONE
ferryman.yml names it by project and service; releases run both ways across the pair.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labenv import ferryman

from ferryman.lab import build_app_image
from ferryman.lab.demo import Demo, compose_up, down, up

STORE = """\
services:
  cart:
    image: {image}
    init: true
    ports: ["8082:8080"]
"""
CART = """\
  cart:
    compose:
      project: store
      service: cart
    health:
      http: http://127.0.0.1:8082/health
      retries: 20
      interval: 500ms
"""


@pytest.fixture()
def mixed(tmp_path: Path) -> Iterator[Demo]:
    prefix = f"ferryman-pytest-kinds-{uuid.uuid4().hex[:6]}"
    made = up(tmp_path / "demo", prefix=prefix, kinds={"prod": "trixie"})
    try:
        for role, image in (("test", "ferryman-app:v2"), ("prod", "ferryman-app:v1")):
            host = made.hosts[role]
            made.lab.exec(host, ["mkdir", "-p", "/opt/store"])
            made.lab.exec(host, ["sh", "-c", "cat > /opt/store/docker-compose.yml"],
                          input=STORE.format(image=image).encode())
            compose_up(made.lab, host, "/opt/store")
        made.config.write_text(made.config.read_text().replace("services:\n",
                                                                "services:\n" + CART, 1))
        yield made
    finally:
        down(tmp_path / "demo", prefix)


def sh(d: Demo, role: str, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def inspect(d: Demo, role: str, name: str) -> dict[str, Any]:
    return json.loads(sh(d, role, f"docker inspect {name}"))[0]


def names(d: Demo, role: str) -> set[str]:
    return set(sh(d, role, "docker ps -a --format '{{.Names}}'").split())


def serves(d: Demo, role: str, port: int) -> str:
    return sh(d, role, f"curl -s -m 5 http://127.0.0.1:{port}/", check=False).strip()


def test_mixed_pair_releases_both_ways_with_one_config(mixed: Demo) -> None:
    engine = "docker version --format '{{.Server.Version}}'"
    assert sh(mixed, "test", engine).startswith("20.10")
    assert sh(mixed, "prod", engine).startswith("26.1")
    status = ferryman(mixed.config, "status", "test", "prod", "--json")
    assert status.code == 0, status.err
    carts = {s["env"]: s for s in status.json()["services"] if s["service"] == "cart"}
    assert carts["test"]["container"] == "store_cart_1"
    assert carts["prod"]["container"] == "store-cart-1"
    assert carts["test"]["mode"] == carts["prod"]["mode"] == "compose"

    dry = ferryman(mixed.config, "release", "test", "prod", "--dry-run")
    assert dry.code == 0, dry.err
    assert "docker compose -p store --project-directory /opt/store" in dry.err

    # TEST (20.10, v1) -> PROD (26.1, v2)
    v2 = inspect(mixed, "test", "store_cart_1")["Image"]
    run = ferryman(mixed.config, "release", "test", "prod", "--yes")
    assert run.code == 0, run.err
    assert "compose up cart on prod-1" in run.err and "stop old web on prod-1" in run.err
    cart = inspect(mixed, "prod", "store-cart-1")
    assert cart["Image"] == v2 and cart["State"]["Running"]
    labels = cart["Config"]["Labels"]
    assert labels["com.docker.compose.service"] == "cart"
    assert labels["com.docker.compose.version"].startswith("2.")
    assert "store_cart_1" not in names(mixed, "prod")
    assert serves(mixed, "prod", 8082) == "app v2"
    assert inspect(mixed, "prod", "web")["Image"] == v2
    assert inspect(mixed, "prod", "shop-api")["Image"] == v2
    (record,) = ferryman(mixed.config, "history", "prod", "--json").json()
    assert {s["service"]: (s["mode"], s["container"]) for s in record["services"]} == {
        "web": ("run", "web"), "api": ("compose", "shop-api"),
        "cart": ("compose", "store-cart-1")}

    # PROD (26.1, v2) -> TEST (20.10, v1): PROD's cart moved on to v3 by hand, and TEST lost
    # its web, which comes back from what Docker 26 says about PROD's.
    v3 = build_app_image("v3-cart", "app v3")  # not v3: another test makes a broken one
    mixed.lab.load_image(mixed.hosts["prod"], v3)
    sh(mixed, "prod", "sed -i -E 's/ferryman-app:v[0-9]+/ferryman-app:v3-cart/' "
       "/opt/store/docker-compose.yml")
    compose_up(mixed.lab, mixed.hosts["prod"], "/opt/store")
    v3_id = inspect(mixed, "prod", "store-cart-1")["Image"]
    sh(mixed, "test", "docker rm -f web")
    back = ferryman(mixed.config, "release", "prod", "test", "--yes",
                    "--service", "web", "--service", "cart")
    assert back.code == 0, back.err
    assert "create web on test-1" in back.err and "compose up cart on test-1" in back.err
    cart = inspect(mixed, "test", "store_cart_1")
    assert cart["Image"] == v3_id and cart["State"]["Running"]
    assert cart["Config"]["Labels"]["com.docker.compose.version"] == "1.29.2"
    assert "store-cart-1" not in names(mixed, "test")
    assert serves(mixed, "test", 8082) == "app v3"
    assert inspect(mixed, "test", "web")["Image"] == v2
    assert serves(mixed, "test", 8080) == "app v2"


def test_doctor_restart_and_logs_on_trixie(mixed: Demo) -> None:
    # Release first: it mends PROD's polluted base_url, so a sound PROD shows no FAIL.
    assert ferryman(mixed.config, "release", "test", "prod", "--yes").code == 0
    run = ferryman(mixed.config, "doctor", "prod", "--json")
    report = json.loads(run.out)
    assert run.code == 0, run.out
    assert report["summary"]["FAIL"] == 0
    findings = report["findings"]
    docker = [f for f in findings if f["check"] == "host" and f["subject"] == "docker"]
    assert docker[0]["data"]["version"].startswith("26.1")
    modes = {f["subject"]: f["data"]["release"] for f in findings if f["check"] == "runmode"}
    assert modes == {"web": "run", "api": "compose", "cart": "compose"}
    check = ferryman(mixed.config, "check", "test", "prod", "--json")
    assert check.code == 0, check.err
    composes = {h["env"]: h["compose"] for h in check.json()}
    assert composes["prod"].startswith("docker compose 2.26")
    assert composes["test"].startswith("docker-compose 1.29")

    before = inspect(mixed, "prod", "store-cart-1")["State"]["StartedAt"]
    restart = ferryman(mixed.config, "restart", "prod", "cart", "--yes")
    assert restart.code == 0, restart.err
    assert inspect(mixed, "prod", "store-cart-1")["State"]["StartedAt"] != before
    logs = ferryman(mixed.config, "logs", "prod", "cart", "--tail", "5")
    assert logs.code == 0, logs.err


DATA = """\
data:
  paths: [/srv/store]
  stop: [cart]
  backup_dir: /var/lib/ferryman/backups
"""


def test_sync_across_kinds_stops_cart_on_each_side_by_its_compose_name(mixed: Demo) -> None:
    for role in ("test", "prod"):
        sh(mixed, role, f"mkdir -p /srv/store && echo {role} > /srv/store/owner")
    mixed.config.write_text(mixed.config.read_text() + DATA)
    started = {"test": inspect(mixed, "test", "store_cart_1")["State"]["StartedAt"],
               "prod": inspect(mixed, "prod", "store-cart-1")["State"]["StartedAt"]}

    run = ferryman(mixed.config, "sync-data", "test", "prod", "--yes")
    assert run.code == 0, run.err
    assert sh(mixed, "prod", "cat /srv/store/owner").strip() == "test"
    (snapshot,) = ferryman(mixed.config, "backups", "test", "--json").json()
    assert snapshot["stopped"] == ["store_cart_1"]
    stopped = {b["kind"]: b["stopped"]
               for b in ferryman(mixed.config, "backups", "prod", "--json").json()}
    assert stopped["safety"] == ["store-cart-1"]
    # Each cart was stopped for the snapshot or the apply, and runs again.
    for role, name in (("test", "store_cart_1"), ("prod", "store-cart-1")):
        now = inspect(mixed, role, name)["State"]
        assert now["Running"] and now["StartedAt"] != started[role]


def test_compose_files_gone_on_trixie_recreates_cart_and_keeps_finding_it(mixed: Demo) -> None:
    sh(mixed, "prod", "rm -rf /opt/store")
    old = inspect(mixed, "prod", "store-cart-1")
    run = ferryman(mixed.config, "release", "test", "prod", "--yes", "--service", "cart")
    assert run.code == 0, run.err
    assert "its compose files are missing" in run.err
    assert "stop old cart on prod-1" in run.err and "start new cart on prod-1" in run.err
    new = inspect(mixed, "prod", "store-cart-1")
    assert new["Id"] != old["Id"] and new["State"]["Running"]
    # `docker run` leaves compose's labels behind; the network and its alias stay.
    assert "com.docker.compose.service" not in (new["Config"]["Labels"] or {})
    assert "cart" in new["NetworkSettings"]["Networks"]["store_default"]["Aliases"]
    assert serves(mixed, "prod", 8082) == "app v2"
    # The old container, set aside with the labels, is not taken for the service; the new
    # one is found by its name.
    status = ferryman(mixed.config, "status", "prod", "--json")
    (cart,) = [s for s in status.json()["services"] if s["service"] == "cart"]
    assert (cart["container"], cart["mode"], cart["state"]) == ("store-cart-1", "run", "running")
    again = ferryman(mixed.config, "release", "test", "prod", "--yes", "--service", "cart")
    assert again.code == 0, again.err
    assert "cart on prod-1 already runs" in again.err
