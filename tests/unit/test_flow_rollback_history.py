"""rollback.pick, rollback planning, the history read and the pruning of kept containers, on
hosts answering as PROD answered after a real release (web in run mode, api by compose)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fakehost import ANY, REST, Capture, Reply, ScriptedHost, ScriptedHosts

from ferryman.errors import BadInput, PreconditionFailed
from ferryman.events import Collector, EventBus
from ferryman.flows import history, release, rollback
from ferryman.journal import journal_path
from ferryman.record import History, Record, ServiceChange, parse_record
from ferryman.state import read_records
from ferryman.transport import CommandFailed

BEFORE = Capture.load("before_release")
AFTER = Capture.load("after_release")
HISTORY = read_records("shop")
# How the history was read when the captures were made.
OLD_HISTORY = ["tail", "-n", "200", "/var/lib/ferryman/shop/releases.jsonl"]
INSPECT = ["docker", "inspect", "--type", "container"]
V1 = AFTER.stdout("prod-1", ["docker", "image", "inspect", "--format", "{{.Id}}",
                            "ferryman-app:v1"]).strip()


def _history(capture: Capture, host: ScriptedHost) -> ScriptedHost:
    """The history on host as the capture holds it, read the way ferryman reads it now."""
    return host.on(HISTORY, *capture.read_replies(host.label, HISTORY, OLD_HISTORY))


def records() -> list[dict[str, Any]]:
    """The records as PROD's history file holds them (JSON lines, read without ferryman)."""
    replies = AFTER.read_replies("prod-1", HISTORY, OLD_HISTORY)
    return [json.loads(line) for line in replies[0].stdout.splitlines()]


def released() -> list[ServiceChange]:
    """What the captured release did to each service, as pruning is handed it."""
    return [ServiceChange.model_validate(s) for s in records()[0]["services"]]


# --- pick ------------------------------------------------------------------------------------

def _r(rid: str, kind: str = "release", result: str = "ok", to: str = "prod",
       **more: str) -> Record:
    # Each changed web (a release that changed nothing is never a rollback target).
    web = {"service": "web", "host": "prod-1", "container": "web", "mode": "run"}
    return parse_record({"id": rid, "kind": kind, "from": "test", "to": to, "who": "op@pc",
                         "when": "2026-01-01T00:00:00+00:00", "result": result,
                         "services": [web], **more})


def _h(*rs: Record, unreadable: list[str] | None = None) -> History:
    return History(list(rs), unreadable or [])


def test_pick_skips_failed_releases_and_ones_already_rolled_back() -> None:
    h = _h(_r("r1"), _r("r2"), _r("r3", result="failed"), _r("r4", to="test"),
           _r("k1", "rollback", rolls_back="r2"))
    assert rollback.pick(h, "prod", None).id == "r1"


def test_pick_ignores_a_rollback_that_failed() -> None:
    h = _h(_r("r1"), _r("r2"), _r("k1", "rollback", result="failed", rolls_back="r2"))
    assert rollback.pick(h, "prod", None).id == "r2"


def test_pick_refuses_an_unknown_or_failed_release_by_name() -> None:
    h = _h(_r("r1"), _r("r2", result="failed"))
    for wanted in ("r9", "r2"):
        with pytest.raises(BadInput) as err:
            rollback.pick(h, "prod", wanted)
        assert err.value.exit_code == 2
        assert str(err.value) == f"no successful release {wanted} on prod (latest: r1)"
    # Lines it could not read may hold the one asked for: the refusal says so.
    h.unreadable.append("line 3: not a JSON object (42)")
    with pytest.raises(BadInput) as err:
        rollback.pick(h, "prod", "r9")
    assert str(err.value) == ("no successful release r9 on prod (latest: r1); 1 record(s) "
                              "could not be read")


def test_pick_refuses_when_nothing_is_left_to_roll_back() -> None:
    with pytest.raises(BadInput) as err:
        rollback.pick(_h(_r("r1"), _r("k1", "rollback", rolls_back="r1")), "prod", None)
    assert str(err.value) == "no release on prod to roll back"
    with pytest.raises(BadInput):
        rollback.pick(_h(), "prod", None)


# --- history ---------------------------------------------------------------------------------

def test_history_of_an_environment_without_releases_is_empty(hosts: ScriptedHosts,
                                                             make_config) -> None:
    cfg = make_config()
    _history(BEFORE, hosts["prod-1"])  # no history file yet: ABSENT
    got = asyncio.run(history.read_history(cfg, hosts.pool(cfg), "prod"))
    assert got.records == [] and got.unreadable == []


def test_history_reads_the_records_on_the_first_host(hosts: ScriptedHosts,
                                                     make_config) -> None:
    cfg = make_config(prod_hosts=["prod-1", "prod-2"])
    _history(AFTER, hosts["prod-1"])
    got = asyncio.run(history.read_history(cfg, hosts.pool(cfg), "prod"))
    assert [r.id for r in got.records] == [records()[0]["id"]] and got.unreadable == []
    # A record of the first version (no `version` key), read as such.
    assert got.records[0].version == 1 and got.records[0].services == released()
    assert "prod-2" not in hosts.by_label


def test_history_that_cannot_be_read_is_an_error(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    hosts["prod-1"].on(HISTORY, Reply(1, "", "tail: cannot open 'releases.jsonl' for reading: "
                                            "Permission denied\n"))
    with pytest.raises(CommandFailed) as err:
        asyncio.run(history.read_history(cfg, hosts.pool(cfg), "prod"))
    assert "cannot read the release history on prod-1" in str(err.value)


# --- rollback planning -----------------------------------------------------------------------

def flow(cfg: Any, hosts: ScriptedHosts, p: rollback.RollbackPlan) -> list[str]:
    """The steps the rollback runs, as its dry run lists them (the runner's lock first)."""
    bus = EventBus("rollback")
    seen = Collector()
    bus.add(seen)
    asyncio.run(release.execute(cfg, hosts.pool(cfg), p, bus, dry_run=True))
    return [e.data["name"] for e in seen.events if e.kind == "step_plan"]


def test_rollback_plan_brings_back_the_kept_web_and_pins_api_again(hosts: ScriptedHosts,
                                                                   make_config) -> None:
    cfg = make_config()
    _history(AFTER, hosts["prod-1"].replay(AFTER))
    kept = records()[0]["services"][0]["kept"]
    p = asyncio.run(rollback.plan_rollback(cfg, hosts.pool(cfg), "prod", None))
    assert p.target is not None and p.target.id == records()[0]["id"]
    assert flow(cfg, hosts, p) == [
        "lock prod on prod-1", "stop old web on prod-1", "start previous web on prod-1",
        "health of web on prod-1", "compose up api on prod-1", "health of api on prod-1"]
    steps = {s.name: s for s in p.steps}
    assert steps["stop old web on prod-1"].commands == [
        "docker update --restart no web", "docker stop web",
        f"docker rename web web.ferryman-{p.rid}"]
    assert steps["start previous web on prod-1"].commands == [
        f"docker rename {kept} web", "docker update --restart unless-stopped web",
        "docker start web"]
    # The previous tag still names the previous image: it is pinned by name.
    assert 'image: "ferryman-app:v1"' in steps["compose up api on prod-1"].commands[0]
    assert not hosts["prod-1"].ran_matching("docker", "rename", REST)


def test_rollback_refuses_when_the_kept_container_is_gone(hosts: ScriptedHosts,
                                                          make_config) -> None:
    cfg = make_config()
    kept = records()[0]["services"][0]["kept"]
    prod = _history(AFTER, hosts["prod-1"].replay(AFTER))
    now = AFTER.stdout("prod-1", [*INSPECT, "web", "shop-api"])
    prod.on([*INSPECT, "web", "shop-api", kept],
            Reply(1, now, f"Error: No such container: {kept}\n"))
    with pytest.raises(PreconditionFailed) as err:
        asyncio.run(rollback.plan_rollback(cfg, hosts.pool(cfg), "prod", None))
    assert err.value.exit_code == 3
    assert str(err.value) == f"the previous web container ({kept}) is gone from prod-1"


def test_rollback_refuses_a_service_the_config_no_longer_has(hosts: ScriptedHosts,
                                                             make_config) -> None:
    cfg = make_config()
    cfg.services.pop("web")
    _history(AFTER, hosts["prod-1"].replay(AFTER))
    with pytest.raises(BadInput) as err:
        asyncio.run(rollback.plan_rollback(cfg, hosts.pool(cfg), "prod", None))
    assert err.value.exit_code == 2
    assert "names service web, which ferryman.yml no longer has" in str(err.value)


# --- pruning what releases kept ---------------------------------------------------------------

def test_prune_keeps_the_newest_and_removes_older_kept_containers(hosts: ScriptedHosts,
                                                                  make_config) -> None:
    cfg = make_config(extra="keep_releases: 1\n")
    prod = hosts["prod-1"].replay(AFTER)
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    removed = asyncio.run(history.prune_kept(cfg, hosts.pool(cfg), "prod",
                                             released(), bus))
    assert removed == ["prod-1:web.ferryman-r20260101-000001",
                       "prod-1:web.ferryman-r20260101-000000"]
    changes = [a for a in prod.ran if a[1] in ("rm", "rmi")]
    # The image goes only when nothing uses it: the engine refused here (still in use).
    assert changes == [
        ["docker", "rm", "web.ferryman-r20260101-000001"], ["docker", "rmi", V1],
        ["docker", "rm", "web.ferryman-r20260101-000000"], ["docker", "rmi", V1]]
    # compose services keep no container: nothing was listed for api.
    assert prod.ran_matching("docker", "ps", REST) == [
        ["docker", "ps", "-a", "--format", "{{.Names}}\t{{.Image}}"]]


def test_prune_goes_on_when_one_container_cannot_be_removed(hosts: ScriptedHosts,
                                                            make_config) -> None:
    cfg = make_config(extra="keep_releases: 1\n")
    prod = hosts["prod-1"].replay(AFTER)
    prod.on(["docker", "rm", "web.ferryman-r20260101-000001"],
            Reply(1, "", "Error response from daemon: removal in progress\n"))
    bus = EventBus("release")
    seen = Collector()
    bus.add(seen)
    removed = asyncio.run(history.prune_kept(cfg, hosts.pool(cfg), "prod",
                                             released(), bus))
    assert removed == ["prod-1:web.ferryman-r20260101-000000"]
    warnings = [e.data["message"] for e in seen.events if e.kind == "warn"]
    assert warnings == ["could not prune web.ferryman-r20260101-000001 on prod-1: "
                        "Error response from daemon: removal in progress"]


def test_prune_within_keep_releases_removes_nothing(hosts: ScriptedHosts,
                                                    make_config) -> None:
    cfg = make_config()  # keep_releases 3: exactly the three kept containers there
    prod = hosts["prod-1"].replay(AFTER)
    removed = asyncio.run(history.prune_kept(cfg, hosts.pool(cfg), "prod",
                                             released(), EventBus("release")))
    assert removed == []
    assert [a for a in prod.ran if a[1] in ("rm", "rmi")] == []


# --- running a rollback: a failure puts back what ran before it ------------------------------

class Containers:
    """PROD's containers as captured after the release, answering inspect, rename, stop and
    start the way the engine does, so set-aside and bring-back see the names they made."""

    def __init__(self, stdout: str) -> None:
        self.by_name = {c["Name"].lstrip("/"): c for c in json.loads(stdout)}

    def inspect(self, argv: list[str]) -> Reply:
        names = argv[4:]
        found = [self.by_name[n] for n in names if n in self.by_name]
        missing = [n for n in names if n not in self.by_name]
        return Reply(1 if missing else 0, json.dumps(found),
                     "".join(f"Error: No such container: {n}\n" for n in missing))

    def rename(self, argv: list[str]) -> Reply:
        old, new = argv[2], argv[3]
        self.by_name[new] = {**self.by_name.pop(old), "Name": f"/{new}"}
        return Reply()

    def run_state(self, running: bool) -> Any:
        def answer(argv: list[str]) -> Reply:
            c = self.by_name[argv[-1]]
            c["State"] = {**c["State"], "Running": running,
                          "Status": "running" if running else "exited"}
            return Reply(0, argv[-1] + "\n")
        return answer


def test_failed_rollback_puts_the_release_back(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    prod = _history(AFTER, hosts["prod-1"].replay(AFTER))
    kept = records()[0]["services"][0]["kept"]
    p = asyncio.run(rollback.plan_rollback(cfg, hosts.pool(cfg), "prod", None))
    aside = f"web.ferryman-{p.rid}"
    engine = Containers(AFTER.stdout("prod-1", [*INSPECT, "web", "shop-api", kept]))
    prod.on([*INSPECT, REST], engine.inspect)
    prod.keeps_state()
    prod.on(["sh", "-c", ANY, "ferryman-record", REST], Reply(0))
    prod.on(["docker", "rename", REST], engine.rename)
    prod.on(["docker", "stop", REST], engine.run_state(False))
    prod.on(["docker", "start", REST], engine.run_state(True))
    prod.on(["docker", "update", "--restart", ANY, "web"], Reply(0, "web\n"))
    # v1 brought back does not answer its health check; v2, put back, does.
    prod.on(["sh", "-c", ANY, "ferryman-http", REST],
            Reply(7, "", "curl: (7) Failed to connect to 127.0.0.1 port 8080\n"), Reply(0))
    prod.on(["docker", "logs", "--tail", "40", "web"], Reply(0, "httpd: bind: in use\n"))
    before = len(prod.changes())

    outcome = asyncio.run(release.execute(cfg, hosts.pool(cfg), p, EventBus("rollback"),
                                          rolls_back=p.target.id))
    assert outcome.failed_step == "step 4/6 health of web on prod-1"
    assert outcome.undone == ["start previous web on prod-1", "stop old web on prod-1"]
    changes = [a for a in prod.changes()[before:] if a[:2] not in (["docker", "inspect"],
                                                                   ["sh", "-c"])]
    assert changes == [
        # rollback: set the released web aside, bring the previous one back
        ["docker", "update", "--restart", "no", "web"], ["docker", "stop", "web"],
        ["docker", "rename", "web", aside],
        ["docker", "rename", kept, "web"],
        ["docker", "update", "--restart", "unless-stopped", "web"], ["docker", "start", "web"],
        ["docker", "logs", "--tail", "40", "web"],
        # undo, in reverse: the previous one aside again, the released one back under its name
        ["docker", "update", "--restart", "no", "web"], ["docker", "stop", "web"],
        ["docker", "rename", "web", kept],
        ["docker", "rename", aside, "web"],
        ["docker", "update", "--restart", "unless-stopped", "web"], ["docker", "start", "web"],
    ]
    assert engine.by_name["web"]["Image"] == records()[0]["services"][0]["new"]["id"]
    assert engine.by_name["web"]["State"]["Running"]
    assert not [a for a in prod.changes()[before:] if a[0] == "docker-compose"]
    # Recorded as a failed rollback of the release: a later rollback still finds it.
    [line] = [a[-1] for a in prod.ran_matching("sh", "-c", ANY, "ferryman-record", REST)]
    record = parse_record(json.loads(line))
    assert (record.kind, record.result, record.rolls_back) == ("rollback", "failed",
                                                               p.target.id)
    assert prod.ran_matching("rm", "-f", "--", journal_path("shop"))
