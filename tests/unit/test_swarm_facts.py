"""Swarm facts, parsed from what a real Swarm of test hosts answered (capture_swarm.py), and
the commands and decisions ferryman builds from them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ferryman.config import ConfigError, load_config
from ferryman.swarm import commands as sc
from ferryman.swarm import facts as sf
from ferryman.swarm.release import active_nodes, reach, release_ref, release_refs

DATA = Path(__file__).parent / "data" / "swarm"
V2 = "sha256:99ab63771fac620047c093031b51d61dc1a6a709d5b60a7df1e1fd321ba99045"


def read(name: str) -> str:
    return (DATA / name).read_text()


def nodes() -> list[sf.Node]:
    return sf.parse_nodes(read("nodes.json"))


def test_nodes_say_role_state_availability_and_labels() -> None:
    by_name = {n.hostname: n for n in nodes()}
    assert sorted(by_name) == ["manager", "worker1", "worker2"]
    m, w1, w2 = by_name["manager"], by_name["worker1"], by_name["worker2"]
    assert (m.role, m.up, m.availability) == ("manager", True, "active")
    assert (w1.role, w1.up, w1.availability) == ("worker", True, "drain")
    assert (w2.up, w2.state) == (False, "down")
    assert m.labels == {sc.image_label(V2): "true"}
    assert m.addr.startswith("172.") and m.os == "linux"


@pytest.mark.parametrize(("constraints", "eligible"), [
    ([], ["manager", "worker1", "worker2"]),
    (["node.role==manager"], ["manager"]),
    (["node.role != manager"], ["worker1", "worker2"]),
    (["node.hostname==worker2", "node.platform.os==linux"], ["worker2"]),
    ([sc.image_constraint(V2)], ["manager", "worker1", "worker2"]),
    (["node.labels.zone==eu"], []),
    (["engine.labels.disk!=ssd"], ["manager", "worker1", "worker2"]),
    (["node.unknown==x"], ["manager", "worker1", "worker2"]),  # unread: the image goes there
])
def test_placement_constraints_choose_the_nodes(constraints: list[str],
                                                eligible: list[str]) -> None:
    assert [n.hostname for n in nodes() if sf.matches(n, constraints)] == eligible


def test_service_after_a_release_completed() -> None:
    svc = sf.parse_services(read("service_completed.json"))["shop_web"]
    assert svc.image.startswith("ferryman-app:r") and svc.previous_image == "ferryman-app:v1"
    assert (svc.update_state, svc.update_message) == ("completed", "update completed")
    assert svc.replicas == 2 and svc.host_ports == [9080]
    assert svc.own_constraints == [sc.image_constraint(V2)] and svc.placement == []
    assert svc.health is not None and svc.health.window == 4.0  # 1s start + 3 x 1s


def test_service_rolled_back_by_swarm_has_no_previous_spec() -> None:
    before = sf.parse_services(read("service_completed.json"))["shop_web"]
    svc = sf.parse_services(read("service_rolled_back.json"))["shop_web"]
    assert svc.update_state in sf.ROLLED_BACK and svc.update_state in sf.FINAL
    assert svc.update_started != before.update_started
    assert svc.image == before.image and svc.previous_image is None


def test_service_never_updated_has_no_update_status() -> None:
    svc = sf.parse_services(read("service_before.json"))["shop_web"]
    assert svc.update_state is None and svc.image == "ferryman-app:v1" and svc.constraints == []


def test_tasks_rejected_for_want_of_the_image() -> None:
    tasks = sf.parse_tasks(read("tasks_rejected.jsonl"))
    assert tasks and all(t.state == "rejected" for t in tasks)
    assert "No such image: ferryman-app:nowhere" in tasks[0].error
    failed = [t for t in sf.parse_tasks(read("tasks_rolled_back.jsonl")) if t.state == "failed"]
    assert failed and "unhealthy container" in failed[0].error


def _svc(replicas: int | None, ports: list[int]) -> sf.Service:
    svc = sf.parse_services(read("service_completed.json"))["shop_web"]
    svc.replicas, svc.host_ports = replicas, ports
    return svc


@pytest.mark.parametrize(("replicas", "ports", "active", "order", "back"), [
    (2, [], 3, "start-first", "start-first"),
    (1, [9080], 3, "start-first", "stop-first"),
    (2, [9080], 3, "stop-first", "stop-first"),  # one spare node: a drain would stall it
    (None, [9080], 3, "stop-first", "stop-first"),  # global: a task on every node
])
def test_update_order(replicas: int | None, ports: list[int], active: int, order: str,
                      back: str) -> None:
    assert sf.update_order(_svc(replicas, ports), active)[:2] == (order, back)


def test_monitor_covers_the_slowest_health_window() -> None:
    svc = _svc(2, [])
    assert sf.monitor(svc, None) == 5.0  # never under 5s (own window: 4s)
    assert sf.monitor(svc, 3 * 10.0) == 30.0  # ferryman's gate: 3 retries of 10s
    svc.health = None
    assert sf.monitor(svc, None) == 5.0


def test_update_command_pins_the_image_and_sets_the_policy() -> None:
    assert sc.update_service("shop_web", "app:r1", order="start-first", rollback_order="stop-first",
                             monitor=7.5, constraints_rm=["node.labels.ferryman.image.a==true"],
                             constraint_add=sc.image_constraint(V2)) == [
        "docker", "service", "update", "--detach", "--image", "app:r1", "--no-resolve-image",
        "--update-order", "start-first", "--update-parallelism", "1", "--update-monitor", "7.5s",
        "--update-failure-action", "rollback", "--update-max-failure-ratio", "0",
        "--rollback-order", "stop-first", "--constraint-rm", "node.labels.ferryman.image.a==true",
        "--constraint-add", "node.labels.ferryman.image.99ab63771fac==true", "shop_web"]
    assert sc.label_nodes("l", ["a", "b"], add=False) == [
        ["docker", "node", "update", "--label-rm", "l", "a"],
        ["docker", "node", "update", "--label-rm", "l", "b"]]
    assert sc.rollback_service("s") == ["docker", "service", "rollback", "--detach", "s"]


def test_release_ref_is_the_repository_tagged_with_the_release() -> None:
    assert release_ref("ferryman-app:v2", "web", "shop", "r1") == "ferryman-app:r1"
    assert release_ref("reg:5000/team/app", "web", "shop", "r1") == "reg:5000/team/app:r1"
    assert release_ref("reg:5000/app:v2", "web", "shop", "r1") == "reg:5000/app:r1"
    assert release_ref("sha256:abc", "Web", "shop", "r1") == "shop-web:r1"


CONFIG = """\
project: shop
environments:
  test:
    hosts: [{{address: "root@10.0.0.1"}}]
  prod:
    hosts:
      - {{name: manager, address: "root@10.0.0.2:22"}}
      - {{name: worker1, address: "root@10.0.0.3"}}
    swarm:
      manager: "{manager}"
      stack: shop
      services: {{{services}}}
services:
  web: {{}}
  api: {{}}
"""


def _config(tmp_path: Path, manager: str = "root@10.0.0.2:22", services: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "ferryman.yml"
    path.write_text(textwrap.dedent(CONFIG.format(manager=manager, services=services)))
    return load_config(path, {})


def test_swarm_config_names_services_and_nodes(tmp_path: Path) -> None:
    cfg = _config(tmp_path, services="api: backend")
    swarm = cfg.environments["prod"].swarm
    assert swarm is not None
    assert (swarm.service_name("web"), swarm.service_name("api")) == ("shop_web", "backend")
    r = reach(cfg, "prod", sf.parse_services(read("service_completed.json"))["shop_web"],
              nodes(), "web")
    # worker1 is drained but up: it gets the image (it may be made active again); worker2 is
    # down and has no host either.
    assert sorted(r.hosts) == ["manager", "worker1"] and active_nodes(r) == 1
    assert r.missing == ["worker2 is down"]


@pytest.mark.parametrize(("manager", "services", "key", "said"), [
    ("root@10.0.0.9", "", "environments.prod.swarm.manager", "the address of one of the hosts"),
    ("root@10.0.0.2:22", "nope: x", "environments.prod.swarm.services.nope",
     "a service defined under services"),
])
def test_bad_swarm_config_is_named(tmp_path: Path, manager: str, services: str, key: str,
                                   said: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, manager, services)
    issues = [i for i in info.value.issues if i.key.startswith(key)]
    assert issues and said in str(issues[0]), "\n".join(map(str, info.value.issues))


def test_one_repository_running_two_images_gets_a_name_per_service() -> None:
    from types import SimpleNamespace as NS

    def src(ref: str, image_id: str) -> NS:
        return NS(ref=ref, facts=NS(image_id=image_id))

    same = {"web": src("app:v2", "sha256:a"), "api": src("app:v2", "sha256:a")}
    assert release_refs(same, "shop", "r1") == {"web": "app:r1", "api": "app:r1"}  # type: ignore[arg-type]
    two = {"web": src("app:v2", "sha256:a"), "api": src("app:v3", "sha256:b"),
           "db": src("db:1", "sha256:c")}
    assert release_refs(two, "shop", "r1") == {  # type: ignore[arg-type]
        "web": "app:r1-web", "api": "app:r1-api", "db": "db:r1"}


def test_service_logs_command() -> None:
    from ferryman.swarm.logs import service_logs
    assert service_logs("shop_web", 5, False) == [
        "docker", "service", "logs", "--timestamps", "--tail", "5", "shop_web"]
    assert service_logs("shop_web", None, True) == [
        "docker", "service", "logs", "--timestamps", "--tail", "all", "--follow", "shop_web"]
