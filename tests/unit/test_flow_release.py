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

from ferryman.docker import images as di
from ferryman.docker import layers as dl
from ferryman.errors import BadInput
from ferryman.events import Collector, EventBus
from ferryman.flows import release
from ferryman.flows.transfer import ImageToSend, Prepared, Sent
from ferryman.journal import journal_path
from ferryman.record import parse_record
from ferryman.transport import Host
from ferryman.transport.base import short_command
from ferryman.undo import UndoContext, run_undo

BEFORE = Capture.load("before_release")
DATA = Capture.load("data_test")
INSPECT = ["docker", "inspect", "--type", "container"]
ID_OF = ["docker", "image", "inspect", "--format", "{{.Id}}"]
V2 = BEFORE.stdout("test-1", [*ID_OF, "ferryman-app:v2"]).strip()
V1 = Capture.load("after_release").stdout("prod-1", [*ID_OF, "ferryman-app:v1"]).strip()

# What planning may run: reads only.
READS = [[*INSPECT, REST], ["docker", "image", "inspect", REST], ["cat", REST],
         ["sh", "-c", ANY, "ferryman-files", REST], ["docker", "compose", "version", "--short"],
         ["docker-compose", "version", "--short"], di.compressors(), dl.host_facts(),
         dl.all_layers(), ["sh", "-c", ANY, "ferryman-read", REST]]
# What `compressors` prints on the test hosts (Debian with zstd and gzip installed).
TOOLS = Reply(0, "zstd\ngzip\n")
# What the layer-aware transfer reads: a Docker 20.10 with GNU tar, and the layers TO holds
# (none in common with FROM's images: the captured images were made apart).
FACTS = Reply(0, 'server 20.10.24+dfsg1\nstatus [["Backing Filesystem","extfs"]]\n'
              "tar (GNU tar) 1.34\n")


def script_transfer_reads(hosts: ScriptedHosts) -> None:
    for label in ("test-1", "test-2", "prod-1", "prod-2"):
        hosts[label].on(dl.host_facts(), FACTS).on(dl.all_layers(), Reply(0, ""))


def only_reads(host: ScriptedHost) -> list[list[str]]:
    """The commands host ran that are not reads (should be none while planning)."""
    probe = ScriptedHost("probe")
    for pattern in READS:
        probe.on(pattern)
    return [argv for argv in host.ran if not any(r.matches(argv) for r in probe.rules)]


def plan(cfg: Any, hosts: ScriptedHosts, src: str = "test", dst: str = "prod",
         transfer: Any = None, files: dict[str, str] | None = None
         ) -> tuple[release.Plan, Collector]:
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    for label in ("test-1", "test-2", "prod-1", "prod-2"):  # compression is chosen at plan
        hosts[label].on(di.compressors(), TOOLS)
        # compose files read to keep a compose release (none here, unless a test says so)
        hosts[label].on(["sh", "-c", ANY, "ferryman-read", REST], Reply(66, ""))
        for path, text in (files or {}).items():
            hosts[label].on(["sh", "-c", ANY, "ferryman-read", path], Reply(0, text))
    script_transfer_reads(hosts)
    made = asyncio.run(release.plan_release(cfg, hosts.pool(cfg), src, dst, [], bus,
                                            transfer=transfer))
    return made, seen


def names(p: release.Plan) -> list[str]:
    return [s.name for s in p.steps]


def flow(cfg: Any, hosts: ScriptedHosts, p: release.Plan) -> list[str]:
    """The steps the release runs, as its dry run lists them: the runner puts the lock of TO
    first. A dry run runs nothing (the `hosts` fixture fails a test on any unscripted command,
    and the tests below check that only reads ran)."""
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    asyncio.run(release.execute(cfg, hosts.pool(cfg), p, bus, dry_run=True))
    return [e.data["name"] for e in seen.events if e.kind == "step_plan"]


def test_plan_of_run_and_compose_services(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    hosts["prod-1"].replay(BEFORE)
    p, _ = plan(cfg, hosts)
    assert flow(cfg, hosts, p) == [
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


COMPOSE_V1 = ('version: "3.7"\nservices:\n  api:\n    image: ferryman-app:v1  # pinned\n'
              '    container_name: shop-api\n')


def test_plan_keeps_a_compose_release_in_the_project_files(hosts: ScriptedHosts,
                                                           make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    hosts["prod-1"].replay(BEFORE)
    files = {"/opt/shop/docker-compose.yml": COMPOSE_V1}
    cfg.environments["prod"].persist_compose = False  # the operator's files not touched
    p, _ = plan(cfg, hosts, files=files)
    assert "keep api in its compose project on prod-1" not in names(p)
    assert "persisted" not in p.record_extra
    cfg.environments["prod"].persist_compose = True  # the default
    p, _ = plan(cfg, hosts, files=files)
    assert names(p)[4:7] == ["compose up api on prod-1", "health of api on prod-1",
                             "keep api in its compose project on prod-1"]
    step = {s.name: s for s in p.steps}["keep api in its compose project on prod-1"]
    bak = f"/opt/shop/docker-compose.yml.ferryman-{p.rid}.bak"
    assert step.commands == [
        f"cp -p -- /opt/shop/docker-compose.yml {bak}",
        "write /opt/shop/docker-compose.yml: image: of api in /opt/shop/docker-compose.yml "
        "line 4 -> ferryman-app:v2"]
    assert step.undo_data == {"kind": "persist", "host": "prod-1",
                              "path": "/opt/shop/docker-compose.yml", "backup": bak}
    (kept,) = p.record_extra["persisted"]
    assert kept["backup"] == bak and kept["service"] == "api"
    assert only_reads(hosts["prod-1"]) == []


def test_plan_refuses_from_equal_to_before_reading(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts, "prod", "prod")
    assert err.value.exit_code == 2 and "FROM and TO are both 'prod'" in str(err.value)
    assert all(h.ran == [] for h in hosts.by_label.values())  # no host was even asked


def test_plan_refuses_tags_the_policy_does_not_allow(hosts: ScriptedHosts,
                                                     make_config) -> None:
    cfg = make_config(allowed='"release-*"')
    hosts["test-1"].replay(BEFORE)
    with pytest.raises(BadInput) as err:
        plan(cfg, hosts)
    assert err.value.exit_code == 2
    assert str(err.value) == ("prod takes only tags matching release-*; refused: "
                              "web: ferryman-app:v2; api: ferryman-app:v2")
    assert not hosts["prod-1"].ran


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
    # With the ids: the same tag may name another build on each host.
    assert str(err.value) == ("web runs different images on the hosts of test: "
                              f"test-1: ferryman-app:v2 ({V2[7:19]}), "
                              f"test-2: ferryman-app:v1 ({V1[7:19]})")


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
    assert flow(cfg, hosts, p) == ["lock prod on prod-1",
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
    assert names(p)[1:3] == ["create web on prod-1", "health of web on prod-1"]
    create = p.steps[1].commands[0]
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
    assert names(p)[4:7] == ["stop old api on prod-1", "start new api on prod-1",
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
    assert p.lock.label == "prod-1" and p.lock.host is hosts["prod-1"]
    assert flow(cfg, hosts, p) == [
        "lock prod on prod-1",
        "transfer images test-1 -> prod-2", "transfer images test-1 -> prod-1",
        "stop old web on prod-2", "start new web on prod-2", "health of web on prod-2",
        "compose up api on prod-1", "health of api on prod-1",
        "compose up api on prod-2", "health of api on prod-2",
        "guard base_url in /opt/shop/app_config.json on prod-1",
        "guard base_url in /opt/shop/app_config.json on prod-2"]
    assert not hosts["prod-1"].ran_matching(*INSPECT, "web", REST)
    # Both hosts lack the same image: FROM saves it once, in the last of their two steps;
    # each step keeps the undo of its own host's tags.
    joins, sends = (s for s in p.steps if s.name.startswith("transfer images"))
    assert joins.commands == ["(in the stream of 'transfer images test-1 -> prod-1')"]
    assert [line.split(":")[0] for line in sends.commands] == ["test-1", "  | prod-1",
                                                               "  | prod-2"]
    assert (joins.undo_data, sends.undo_data) == (
        {"kind": "retag", "host": "prod-2", "before": {"ferryman-app:v2": None}},
        {"kind": "retag", "host": "prod-1", "before": {"ferryman-app:v2": None}})


# --- running the plan: a failure undoes what was done, in reverse ----------------------------

class NoTransfer:
    """Stands in for the image stream (a pipe between two hosts, not a command)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[str]]] = []

    async def prepare(self, src: Host, dst: Host, images: list[ImageToSend]) -> Prepared:
        return Prepared(src, dst, images, "zstd", ["save"], ["load"])

    async def send(self, p: Prepared, bus: EventBus) -> Sent:
        self.sent.append((p.src.label, p.dst.label, [i.ref for i in p.images]))
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
    new_id = "c0ffee" * 10 + "cafe"
    # The new web as the engine shows a container that exited at once (TEST's web, stopped),
    # under the id `docker create` gave it.
    exited = DATA.replies("test-1", [*INSPECT, "shop-api", "web"])[-1].stdout
    exited_new = json.dumps([{**c, "Id": new_id} for c in json.loads(exited)
                             if c["Name"] == "/web"])
    prod.keeps_state()
    prod.on(["sh", "-c", ANY, "ferryman-record", REST], Reply(0))
    # Before the set-aside: web runs, nothing is kept; before the bring-back: only the kept one.
    prod.on([*INSPECT, "web", kept], Reply(1, running, f"Error: No such container: {kept}\n"),
            Reply(1, aside, "Error: No such container: web\n"))
    prod.on(["docker", "update", "--restart", ANY, "web"], Reply(0, "web\n"))
    prod.on(["docker", "stop", "web"], Reply(0, "web\n"))
    prod.on(["docker", "rename", REST], Reply(0))
    prod.on(["docker", "create", "--name", "web", REST], Reply(0, new_id + "\n"))
    prod.on(["docker", "start", "web"], Reply(0, "web\n"))
    # The new web exits at once (the health check, then the undo of its start find it); the
    # old one, back under its name, runs.
    prod.on([*INSPECT, "web"], Reply(0, exited_new), Reply(0, exited_new), Reply(0, running))
    prod.on(["docker", "logs", "--tail", "40", "web"], Reply(0, "", "boom\n"))
    prod.on(["docker", "rm", "-f", REST], Reply(0))
    prod.on(["sh", "-c", ANY, "ferryman-http", REST], Reply(0))
    prod.on(["docker", "rmi", "ferryman-app:v2"], Reply(0))
    steps_ran_before = len(prod.changes())

    bus = EventBus("release")
    outcome = asyncio.run(release.execute(cfg, hosts.pool(cfg), p, bus))
    assert not outcome.ok and outcome.exit_code == 1
    assert outcome.failed_step == "step 5/8 health of web on prod-1"
    assert "web on prod-1 is not healthy after 1 checks: container web is exited" in (
        outcome.error or "")
    assert outcome.undone == ["start new web on prod-1", "stop old web on prod-1",
                              "transfer images test-1 -> prod-1"]
    assert sent.sent == [("test-1", "prod-1", ["ferryman-app:v2"])]
    changes = [a for a in prod.changes()[steps_ran_before:] if a[:2] not in (
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
        ["docker", "rm", "-f", new_id],
        ["docker", "rename", kept, "web"],
        ["docker", "update", "--restart", "unless-stopped", "web"],
        ["docker", "start", "web"],
        ["docker", "rmi", "ferryman-app:v2"],
    ]
    assert not [a for a in prod.changes()[steps_ran_before:] if "up" in a]  # api never reached
    # The failed release is recorded with what was undone; every host is as it was, so the
    # journal goes and the lock is given back.
    [line] = [a[-1] for a in prod.ran_matching("sh", "-c", ANY, "ferryman-record", REST)]
    record = parse_record(json.loads(line))
    assert (record.id, record.result, record.failed_step) == (
        p.rid, "failed", "step 5/8 health of web on prod-1")
    assert record.undone == outcome.undone
    assert prod.ran_matching("rm", "-f", "--", journal_path("shop"))
    assert prod.ran_matching("sh", "-c", ANY, "ferryman-unlock", REST)


def test_undo_of_a_start_never_removes_the_container_that_ran_before(
        hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    prod = hosts["prod-1"].replay(BEFORE)
    p, _ = plan(cfg, hosts)
    start = next(s for s in p.steps if s.name == "start new web on prod-1")
    running = json.loads(BEFORE.stdout("prod-1", [*INSPECT, "web", "shop-api"]))
    [old] = [c for c in running if c["Name"] == "/web"]
    assert start.undo_data == {"kind": "created", "host": "prod-1", "container": "web",
                               "keep_id": old["Id"]}
    assert start.undo is not None
    planned = len(prod.ran)
    # The old web still (or again) under its name: the undo, live or from a journal, leaves it.
    prod.on([*INSPECT, "web"], Reply(0, json.dumps([old])))
    asyncio.run(start.undo())
    asyncio.run(run_undo(UndoContext(cfg, hosts.pool(cfg), "prod"), start.undo_data))
    assert prod.ran[planned:] == [[*INSPECT, "web"], [*INSPECT, "web"]]
    # A container of that name with another id is the new one: removed by its id.
    new = {**old, "Id": "c0ffee" * 10 + "cafe"}
    prod.on([*INSPECT, "web"], Reply(0, json.dumps([new])))
    prod.on(["docker", "rm", "-f", new["Id"]], Reply(0))
    asyncio.run(start.undo())
    assert prod.ran[-1] == ["docker", "rm", "-f", new["Id"]]
    # No container of that name (the create never ran): nothing to remove.
    prod.on([*INSPECT, "web"], Reply(1, "[]", "Error: No such container: web\n"))
    asyncio.run(start.undo())
    assert prod.ran[-1] == [*INSPECT, "web"]


def test_the_dry_run_shows_the_transfer_it_will_run(hosts: ScriptedHosts, make_config) -> None:
    """Compression is chosen while planning: TO has no zstd here, so gzip on both sides."""
    cfg = make_config()
    hosts["test-1"].replay(BEFORE)
    hosts["prod-1"].replay(BEFORE)
    p, _ = plan(cfg, hosts)
    hosts["prod-1"].on(di.compressors(), Reply(0, "gzip\n"))
    again, _ = plan_with_tools(cfg, hosts)
    [send] = [s for s in again.steps if s.name.startswith("transfer images")]
    assert send.params["compression"] == "gzip"
    assert send.commands == [
        "test-1: " + short_command(di.save(["ferryman-app:v2"], "gzip")),
        "  | prod-1: " + short_command(di.load("gzip"))]
    [first] = [s for s in p.steps if s.name.startswith("transfer images")]
    assert first.params["compression"] == "zstd"


def plan_with_tools(cfg: Any, hosts: ScriptedHosts) -> tuple[release.Plan, Collector]:
    """Plans without scripting the compressors again (the test set them)."""
    script_transfer_reads(hosts)
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    return asyncio.run(release.plan_release(cfg, hosts.pool(cfg), "test", "prod", [],
                                            bus)), seen
