"""Guard steps and status, on hosts answering as the demo's TEST and PROD did."""

from __future__ import annotations

import asyncio
import json

import pytest
from fakehost import ANY, Capture, Reply, ScriptedHost, ScriptedHosts

from ferryman.docker import commands as dc
from ferryman.errors import FerrymanError
from ferryman.events import EventBus
from ferryman.flows import guards, status
from ferryman.flows.lock import env_lock
from ferryman.lab.demo import APP_DIR, COMPOSE
from ferryman.state import ABSENT, read_file
from ferryman.steps import Step, run_steps
from ferryman.transport import CommandFailed, TransportError

BEFORE = Capture.load("before_release")
DATA = Capture.load("data_test")
FILE = "/opt/shop/app_config.json"
INSPECT = ["docker", "inspect", "--type", "container"]
WRITE = ["sh", "-c", ANY, "ferryman-write", FILE]
RESTORE = ["sh", "-c", ANY, "ferryman-restore", ANY, FILE]
READ = read_file(FILE)


def _reads(host: ScriptedHost, *files: str) -> ScriptedHost:
    """The guarded files as the host printed them (captured as `cat FILE`), read the way
    guards read them now."""
    for path in files or (FILE,):
        host.on(read_file(path), *BEFORE.read_replies(host.label, read_file(path),
                                                      ["cat", path]))
    return host


def _api_health(host) -> None:  # type: ignore[no-untyped-def]
    # shop-api as the engine showed it once its healthcheck had passed
    host.on([*INSPECT, "shop-api"], DATA.replies("test-1", [*INSPECT, "shop-api"])[-1])
    host.on(["docker", "restart", "shop-api"], Reply(0, "shop-api\n"))


def _steps(cfg, hosts: ScriptedHosts, env: str, rid: str = "r1"):  # type: ignore[no-untyped-def]
    return asyncio.run(guards.guard_steps(cfg, hosts.pool(cfg), env, rid))


def test_guard_mends_a_file_naming_another_environment(hosts: ScriptedHosts,
                                                       make_config) -> None:
    cfg = make_config()
    prod = _reads(hosts["prod-1"].replay(BEFORE))  # PROD's file names TEST (10.0.0.58)
    _api_health(prod)
    prod.on(["cp", "-p", FILE, f"{FILE}.ferryman-r1.bak"])
    prod.on(WRITE)
    [step] = _steps(cfg, hosts, "prod")
    assert step.name == f"guard base_url in {FILE} on prod-1"
    said = asyncio.run(step.run())
    assert said == ("base_url: http://10.0.0.58:9380 -> http://10.0.0.57:9380 "
                    f"(backup {FILE}.ferryman-r1.bak), restarted api")
    assert prod.ran[0] == READ
    assert [a[:2] for a in prod.ran[1:]] == [
        ["cp", "-p"], ["sh", "-c"], ["docker", "restart"], ["docker", "inspect"]]
    written = prod.inputs[prod.ran.index(prod.ran_matching(*WRITE)[0])]
    assert json.loads(written) == {"base_url": "http://10.0.0.57:9380", "name": "shop"}


def test_guard_undo_puts_the_file_back_and_restarts_again(hosts: ScriptedHosts,
                                                          make_config) -> None:
    cfg = make_config()
    prod = _reads(hosts["prod-1"].replay(BEFORE)).keeps_state()
    _api_health(prod)
    prod.on(["cp", "-p", FILE, f"{FILE}.ferryman-r1.bak"])
    prod.on(WRITE)
    prod.on(RESTORE)
    [step] = _steps(cfg, hosts, "prod")

    async def failing() -> None:
        raise FerrymanError("a later step failed")

    lock = env_lock(cfg, hosts.pool(cfg), "prod", "release test prod (r1)")
    outcome = asyncio.run(run_steps(EventBus("release"), [step, Step("later", failing)],
                                    locks=[lock]))
    assert outcome.failed_step == "step 3/3 later"
    assert outcome.undone == [step.name]
    assert [a[3:] for a in prod.ran_matching(*RESTORE)] == [
        ["ferryman-restore", f"{FILE}.ferryman-r1.bak", FILE]]
    assert len(prod.ran_matching("docker", "restart", "shop-api")) == 2


def test_guard_leaves_a_file_that_names_its_own_environment(hosts: ScriptedHosts,
                                                            make_config) -> None:
    cfg = make_config()
    test = _reads(hosts["test-1"].replay(BEFORE))  # TEST's file names TEST
    [step] = _steps(cfg, hosts, "test")
    assert asyncio.run(step.run()) == "base_url = http://10.0.0.58:9380: names test"
    assert test.ran == [READ]
    # Nothing was changed, so no backup was made: nothing is put back, nothing restarted.
    test.on(RESTORE, Reply(ABSENT))
    asyncio.run(step.undo())
    assert test.ran[0] == READ and [a[3] for a in test.ran[1:]] == ["ferryman-restore"]


def test_guard_of_a_missing_file_guards_nothing(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config(extra="  - file: /opt/shop/missing.json\n    key: base_url\n")
    _reads(hosts["prod-1"].replay(BEFORE), "/opt/shop/missing.json")
    _, missing = _steps(cfg, hosts, "prod")
    assert asyncio.run(missing.run()) == ("/opt/shop/missing.json does not exist on prod-1: "
                                          "nothing to guard")


def test_guard_of_a_file_it_cannot_read_is_an_error(hosts: ScriptedHosts,
                                                    make_config) -> None:
    # Only the read script's ABSENT means "no file": any other failure stops the flow.
    cfg = make_config()
    hosts["prod-1"].on(READ, Reply(1, "", f"cat: {FILE}: Permission denied\n"))
    [step] = _steps(cfg, hosts, "prod")
    with pytest.raises(CommandFailed) as err:
        asyncio.run(step.run())
    assert str(err.value).startswith(f"cannot read {FILE} on prod-1: ")
    assert err.value.exit_code == 1


def test_guard_refuses_a_file_it_cannot_read_as_json(hosts: ScriptedHosts,
                                                     make_config) -> None:
    cfg = make_config()
    hosts["prod-1"].on(READ, Reply(0, "base_url = http://10.0.0.58\n"))
    [step] = _steps(cfg, hosts, "prod")
    with pytest.raises(FerrymanError) as err:
        asyncio.run(step.run())
    assert str(err.value).startswith(f"{FILE} on prod-1: not valid JSON")
    assert err.value.hint == "fix the file, or the guard on base_url"


def test_guards_run_on_each_host_of_the_environments_they_name(hosts: ScriptedHosts,
                                                               make_config) -> None:
    cfg = make_config(prod_hosts=["prod-1", "prod-2"],
                      extra="  - file: /etc/only-test.json\n    key: url\n"
                            "    environments: [test]\n")
    assert [s.name for s in _steps(cfg, hosts, "prod")] == [
        f"guard base_url in {FILE} on prod-1", f"guard base_url in {FILE} on prod-2"]
    assert [s.name for s in _steps(cfg, hosts, "test")] == [
        f"guard base_url in {FILE} on test-1", "guard url in /etc/only-test.json on test-1"]
    assert all(h.ran == [] for h in hosts.by_label.values())  # planning reads nothing


# --- status ----------------------------------------------------------------------------------

def _project_files(host: ScriptedHost, image: str) -> ScriptedHost:
    """The demo's compose file naming `image`, and no .env, as the host's files read them."""
    text = COMPOSE.format(image=image, app_dir=APP_DIR)
    return host.on(dc.read_files(["/opt/shop/docker-compose.yml", "/opt/shop/.env"]),
                   Reply(stdout=f"\x1e+/opt/shop/docker-compose.yml\n{text}"
                                "\x1e-/opt/shop/.env\n"))


def test_status_reads_each_host_and_shows_drift(hosts: ScriptedHosts, make_config) -> None:
    cfg = make_config()
    _project_files(hosts["test-1"].replay(BEFORE), "ferryman-app:v2")
    _project_files(hosts["prod-1"].replay(BEFORE), "ferryman-app:v9")
    got = asyncio.run(status.collect(hosts.pool(cfg), ["test", "prod"]))
    rows = [(s.place.env, s.place.service, s.state, s.mode, s.facts and s.facts.image_ref)
            for s in got]
    assert rows == [("test", "web", "running", "run", "ferryman-app:v2"),
                    ("test", "api", "running", "compose", "ferryman-app:v2"),
                    ("prod", "web", "running", "run", "ferryman-app:v1"),
                    ("prod", "api", "running", "compose", "ferryman-app:v1")]
    api = got[1].to_dict()["compose"]
    assert api["config_files"] == [{"path": "/opt/shop/docker-compose.yml", "exists": True}]
    assert (api["files_name"], api["files_disagree"]) == ("ferryman-app:v2", False)
    # PROD's file names v9 while v1 runs: a plain `compose up -d` would start v9.
    prod_api = got[3].to_dict()["compose"]
    assert (prod_api["files_name"], prod_api["files_disagree"]) == ("ferryman-app:v9", True)
    assert [(d.service, d.differs) for d in status.drift(got, ["test", "prod"])] == [
        ("web", True), ("api", True)]


def test_status_of_an_unreachable_host_still_shows_the_others(hosts: ScriptedHosts,
                                                              make_config) -> None:
    cfg = make_config()
    _project_files(hosts["test-1"].replay(BEFORE), "ferryman-app:v2")
    hosts["prod-1"].on([*INSPECT, "web", "shop-api"],
                       TransportError("prod-1", "cannot connect: Connection refused"))
    got = asyncio.run(status.collect(hosts.pool(cfg), ["test", "prod"]))
    assert [(s.place.env, s.state) for s in got] == [
        ("test", "running"), ("test", "running"), ("prod", "unreachable"),
        ("prod", "unreachable")]
    assert got[2].to_dict()["error"] == "prod-1: cannot connect: Connection refused"
