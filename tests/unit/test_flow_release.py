"""release planning and undo, on hosts answering with what real engines answered.

The demo's scene: TEST runs ferryman-app:v2, PROD v1; `web` by docker run, `api` by
docker-compose 1.29 (container shop-api); PROD's config file names TEST. Planning must only
read; its refusals name what is wrong; a failure while running undoes in reverse.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fakehost import ANY, REST, Capture, Reply, ScriptedHost, ScriptedHosts

from ferryman.errors import BadInput
from ferryman.events import Collector, EventBus
from ferryman.flows import release
from ferryman.flows.transfer import ImageToSend, Sent
from ferryman.steps import run_steps
from ferryman.transport import Host

BEFORE = Capture.load("before_release")
DATA = Capture.load("data_test")
INSPECT = ["docker", "inspect", "--type", "container"]
ID_OF = ["docker", "image", "inspect", "--format", "{{.Id}}"]
V2 = BEFORE.stdout("test-1", [*ID_OF, "ferryman-app:v2"]).strip()
V1 = Capture.load("after_release").stdout("prod-1", [*ID_OF, "ferryman-app:v1"]).strip()

# What planning may run: reads only.
READS = [[*INSPECT, REST], ["docker", "image", "inspect", REST], ["cat", REST],
         ["sh", "-c", ANY, "ferryman-files", REST], ["docker", "compose", "version", "--short"],
         ["docker-compose", "version", "--short"]]


def only_reads(host: ScriptedHost) -> list[list[str]]:
    """The commands host ran that are not reads (should be none while planning)."""
    probe = ScriptedHost("probe")
    for pattern in READS:
        probe.on(pattern)
    return [argv for argv in host.ran if not any(r.matches(argv) for r in probe.rules)]


def plan(cfg: Any, hosts: ScriptedHosts, src: str = "test", dst: str = "prod",
         transfer: Any = None) -> tuple[release.Plan, Collector]:
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    made = asyncio.run(release.plan_release(cfg, hosts.pool(cfg), src, dst, [], bus,
                                            transfer=transfer))
    return made, seen


def names(p: release.Plan) -> list[str]:
    return [s.name for s in p.steps]


def test_plan_of_run_and_compose_services(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    hosts["prod-1"].replay(BEFORE)
    p, _ = plan(cfg, hosts)
    assert names(p) == [
        "lock prod on prod-1", "transfer images test-1 -> prod-1",
        "stop old web on prod-1", "start new web on prod-1", "health of web on prod-1",
        "compose up api on prod-1", "health of api on prod-1",
        "guard base_url in /opt/shop/app_config.json on prod-1"]
    steps = {s.name: s for s in p.steps}
    kept = f"web.ferryman-{p.rid}"
    # web runs with --restart unless-stopped: its policy goes off before it is set aside.
    assert steps["stop old web on prod-1"].commands == [
        "docker update --restart no web", "docker stop web", f"docker rename web {kept}"]
    create, start = steps["start new web on prod-1"].commands
    assert create.startswith("docker create --name web ") and " ferryman-app:v2" in create
    assert start == "docker start web"
    override, up = steps["compose up api on prod-1"].commands
    assert 'image: "ferryman-app:v2"' in override
    assert up.startswith("docker-compose -p shop --project-directory /opt/shop ")
    assert up.endswith("up -d --no-deps api")
    assert only_reads(hosts["test-1"]) == [] and only_reads(hosts["prod-1"]) == []


def test_plan_refuses_from_equal_to_before_reading(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts, "prod", "prod")
    assert err.value.exit_code == 2 and "FROM and TO are both 'prod'" in str(err.value)
    assert hosts.by_label == {}  # no host was even opened


def test_plan_refuses_tags_the_policy_does_not_allow(hosts: ScriptedHosts,
                                                     make_config) -> None:
    cfg = make_config(allowed='"release-*"')
    hosts["test-1"].replay(BEFORE)
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts)
    assert err.value.exit_code == 2
    assert str(err.value) == ("prod takes only tags matching release-*; refused: "
                              "web: ferryman-app:v2; api: ferryman-app:v2")
    assert "prod-1" not in hosts.by_label


def test_plan_refuses_a_service_not_running_on_from(hosts: ScriptedHosts,
                                                    make_config) -> None:
    cfg = make_config()
    # TEST's containers as the engine showed them once stopped.
    stopped = DATA.replies("test-1", [*INSPECT, "shop-api", "web"])[-1]
    hosts["test-1"].replay(BEFORE).on([*INSPECT, "web", "shop-api"], stopped)
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts)
    assert err.value.exit_code == 2
    assert str(err.value) == "web is not running on test (test-1: exited); nothing to release"


def test_plan_refuses_a_tag_moved_since_the_container_started(hosts: ScriptedHosts,
                                                              make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE).on([*ID_OF, "ferryman-app:v2"], Reply(0, V1 + "\n"))
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts)
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"on test-1, ferryman-app:v2 now names {V1} but ")
    assert f"runs {V2}" in str(err.value)


def test_plan_refuses_images_differing_between_from_hosts(hosts: ScriptedHosts,
                                                          make_config) -> None:
    cfg = make_config(test_hosts=["test-1", "test-2"])
    hosts["test-1"].replay(BEFORE)
    hosts["test-2"].replay(BEFORE, host="prod-1")  # a second TEST host still on v1
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts)
    assert err.value.exit_code == 2
    assert str(err.value) == ("web runs different images on the hosts of test: "
                              "test-1: ferryman-app:v2, test-2: ferryman-app:v1")


def test_plan_of_services_that_already_run_the_image(hosts: ScriptedHosts,
                                                     make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    # PROD as TEST is: the same containers on the same image, which it has.
    hosts["prod-1"].replay(BEFORE, host="test-1").replay(BEFORE, host="prod-1").on(
        [*INSPECT, "web", "shop-api"], *BEFORE.replies("test-1", [*INSPECT, "web", "shop-api"]))
    hosts["prod-1"].on(["docker", "image", "inspect", "ferryman-app:v2"],
                       *BEFORE.replies("test-1", ["docker", "image", "inspect", V2]))
    p, _ = plan(cfg, hosts)
    assert names(p) == ["lock prod on prod-1",
                        "guard base_url in /opt/shop/app_config.json on prod-1"]
    assert p.notes == ["prod-1 already has ferryman-app:v2",
                       "web on prod-1 already runs ferryman-app:v2",
                       "api on prod-1 already runs ferryman-app:v2"]


def _without(stdout: str, name: str) -> Reply:
    """The engine's answer when one of the containers asked for does not exist."""
    kept = [c for c in json.loads(stdout) if c["Name"] != f"/{name}"]
    return Reply(1, json.dumps(kept), f"Error: No such container: {name}\n")


def test_plan_bootstraps_a_service_to_has_not(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    both = BEFORE.stdout("prod-1", [*INSPECT, "web", "shop-api"])
    hosts["prod-1"].replay(BEFORE).on([*INSPECT, "web", "shop-api"], _without(both, "web"))
    p, _ = plan(cfg, hosts)
    assert names(p)[2:4] == ["create web on prod-1", "health of web on prod-1"]
    create = p.steps[2].commands[0]
    assert create.startswith("docker create --name web ") and " ferryman-app:v2" in create
    assert "compose up api on prod-1" in names(p)


def test_plan_recreates_from_inspect_when_compose_files_are_gone(hosts: ScriptedHosts,
                                                                 make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    hosts["prod-1"].replay(BEFORE).on(
        ["sh", "-c", ANY, "ferryman-files", "/opt/shop/docker-compose.yml"],
        Reply(0, "n /opt/shop/docker-compose.yml\n"))
    p, seen = plan(cfg, hosts)
    assert names(p)[5:8] == ["stop old api on prod-1", "start new api on prod-1",
                             "health of api on prod-1"]
    warnings = [e.data["message"] for e in seen.events if e.kind == "warn"]
    assert warnings == ["api on prod-1 was started by compose but its compose files are "
                        "missing (/opt/shop/docker-compose.yml): recreating it from docker "
                        "inspect instead"]


def test_plan_for_two_to_hosts_and_a_service_pinned_to_one(hosts: ScriptedHosts,
                                                           make_config) -> None:
    cfg = make_config(prod_hosts=["prod-1", "prod-2"], web_hosts=["test-1", "prod-2"])
    hosts["test-1"].replay(BEFORE)
    for label in ("prod-1", "prod-2"):
        hosts[label].replay(BEFORE, host="prod-1")
        hosts[label].on([*INSPECT, "shop-api"], _without(
            BEFORE.stdout("prod-1", [*INSPECT, "web", "shop-api"]), "web"))
    hosts["prod-2"].on([*INSPECT, "web", "shop-api"],
                       *BEFORE.replies("prod-1", [*INSPECT, "web", "shop-api"]))
    p, _ = plan(cfg, hosts)
    # Hosts in the order services name them (web first, pinned to prod-2); the lock and the
    # history stay on the first host; guards run on each.
    assert names(p) == [
        "lock prod on prod-1",
        "transfer images test-1 -> prod-2", "transfer images test-1 -> prod-1",
        "stop old web on prod-2", "start new web on prod-2", "health of web on prod-2",
        "compose up api on prod-1", "health of api on prod-1",
        "compose up api on prod-2", "health of api on prod-2",
        "guard base_url in /opt/shop/app_config.json on prod-1",
        "guard base_url in /opt/shop/app_config.json on prod-2"]
    assert not hosts["prod-1"].ran_matching(*INSPECT, "web", REST)


# --- running the plan: a failure undoes what was done, in reverse ----------------------------

class NoTransfer:
    """Stands in for the image stream (a pipe between two hosts, not a command)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[str]]] = []

    async def send(self, src: Host, dst: Host, images: list[ImageToSend],
                   bus: EventBus) -> Sent:
        self.sent.append((src.label, dst.label, [i.ref for i in images]))
        return Sent(1000, "zstd", 0.1)


def _renamed(stdout: str, old: str, new: str, state: dict[str, Any] | None = None) -> str:
    out = []
    for c in json.loads(stdout):
        if c["Name"] == f"/{old}":
            c = {**c, "Name": f"/{new}", "State": {**c["State"], **(state or {})}}
        out.append(c)
    return json.dumps(out)


def test_failed_health_undoes_in_reverse(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    prod = hosts["prod-1"].replay(BEFORE)
    sent = NoTransfer()
    p, _ = plan(cfg, hosts, transfer=sent)
    kept = f"web.ferryman-{p.rid}"
    running = BEFORE.stdout("prod-1", [*INSPECT, "web", "shop-api"])
    aside = _renamed(running, "web", kept, {"Status": "exited", "Running": False})
    exited_web = DATA.replies("test-1", [*INSPECT, "shop-api", "web"])[-1].stdout
    prod.keeps_state()
    # Before the set-aside: web runs, nothing is kept; before the bring-back: only the kept one.
    prod.on([*INSPECT, "web", kept], Reply(1, running, f"Error: No such container: {kept}\n"),
            Reply(1, aside, "Error: No such container: web\n"))
    prod.on(["docker", "update", "--restart", ANY, "web"], Reply(0, "web\n"))
    prod.on(["docker", "stop", "web"], Reply(0, "web\n"))
    prod.on(["docker", "rename", REST], Reply(0))
    prod.on(["docker", "create", "--name", "web", REST], Reply(0, "c0ffee" * 10 + "cafe\n"))
    prod.on(["docker", "start", "web"], Reply(0, "web\n"))
    # The new web exits at once; the old one, back under its name, runs.
    prod.on([*INSPECT, "web"], Reply(0, exited_web), Reply(0, running))
    prod.on(["docker", "logs", "--tail", "40", "web"], Reply(0, "", "boom\n"))
    prod.on(["docker", "rm", "-f", REST], Reply(0))
    prod.on(["sh", "-c", ANY, "ferryman-http", REST], Reply(0))
    prod.on(["docker", "rmi", "ferryman-app:v2"], Reply(0))
    steps_ran_before = len(prod.ran)

    bus = EventBus("release")
    outcome = asyncio.run(run_steps(bus, p.steps))
    assert not outcome.ok and outcome.exit_code == 1
    assert outcome.failed_step == "step 5/8 health of web on prod-1"
    assert "web on prod-1 is not healthy after 1 checks: container web is exited" in (
        outcome.error or "")
    assert outcome.undone == ["start new web on prod-1", "stop old web on prod-1",
                              "transfer images test-1 -> prod-1"]
    assert sent.sent == [("test-1", "prod-1", ["ferryman-app:v2"])]
    changes = [a for a in prod.ran[steps_ran_before:] if a[:2] not in (
        ["docker", "inspect"], ["sh", "-c"])]
    create = changes.pop(3)
    assert create[:4] == ["docker", "create", "--name", "web"] and "ferryman-app:v2" in create
    assert changes == [
        # run: set the old web aside, create (above) and start the new one
        ["docker", "update", "--restart", "no", "web"], ["docker", "stop", "web"],
        ["docker", "rename", "web", kept],
        ["docker", "start", "web"],
        ["docker", "logs", "--tail", "40", "web"],
        # undo, in reverse: remove exactly the new container, bring the old one back, untag
        ["docker", "rm", "-f", "c0ffee" * 10 + "cafe"],
        ["docker", "rename", kept, "web"],
        ["docker", "update", "--restart", "unless-stopped", "web"],
        ["docker", "start", "web"],
        ["docker", "rmi", "ferryman-app:v2"],
    ]
    assert not [a for a in prod.ran[steps_ran_before:] if "up" in a]  # api never reached
