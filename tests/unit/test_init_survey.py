"""init's reading of hosts, through hosts that answer as the demo's real hosts did
(tests/unit/data/flows/before_release.json): exactly which commands run, all of them reads,
and what becomes of their answers."""

from __future__ import annotations

import asyncio
import base64

import pytest
from fakehost import Capture, Reply, ScriptedHosts

from ferryman.errors import PreconditionFailed
from ferryman.init import read, request
from ferryman.init.survey import survey

CAPTURE = Capture.load("before_release")
CONFIG_FILE = "/opt/shop/app_config.json"
REQ = request.build(["test=root@127.0.0.1:2201", "prod=root@127.0.0.1:2202"],
                    ["test=10.0.0.58", "prod=10.0.0.57"])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def script(hosts: ScriptedHosts, label: str) -> None:
    inspect = CAPTURE.stdout(label, ["docker", "inspect", "--type", "container", "web",
                                     "shop-api"])
    body = CAPTURE.stdout(label, ["cat", CONFIG_FILE])
    h = hosts[label]
    h.on(read.inspect_all(), Reply(0, inspect))
    h.on(read.own_addresses(), Reply(0, "172.17.0.2 172.18.0.1 \n"))  # hostname -I
    h.on(read.config_files([CONFIG_FILE]), Reply(0, f"f 1\nc 1 {b64(CONFIG_FILE)} {b64(body)}\n"))
    h.on(read.http_status(["http://127.0.0.1:8080"]),
         Reply(0, "200 http://127.0.0.1:8080/health\n"))


def test_survey_runs_reads_only_and_gathers_the_facts(hosts: ScriptedHosts) -> None:
    for label in ("test-1", "prod-1"):
        script(hosts, label)
    cfg = request.connect_config(REQ)

    async def go():  # type: ignore[no-untyped-def]
        pool = hosts.pool(cfg)
        return await survey(pool, REQ)

    facts = asyncio.run(go())

    assert [(f.env, f.host) for f in facts] == [("test", "test-1"), ("prod", "prod-1")]
    for label in ("test-1", "prod-1"):
        # One round trip each: every container, the addresses, the config files under the
        # bind mounts, and GETs to the one published port without a HEALTHCHECK (web's).
        assert sorted(a[3] for a in hosts[label].ran) == [
            "ferryman-addresses", "ferryman-config-files", "ferryman-http-status",
            "ferryman-inspect-all"]
    test = facts[0]
    assert {c.name: (c.compose, c.healthcheck) for c in test.containers} == {
        "web": (None, False), "shop-api": (("shop", "api"), True)}
    assert test.addresses == ["172.17.0.2", "172.18.0.1"]
    assert test.probes == {"http://127.0.0.1:8080/health": 200}
    assert '"base_url": "http://10.0.0.58:9380"' in test.paths[CONFIG_FILE].files[CONFIG_FILE]
    assert test.to_dict()["containers"][0]["name"] in ("web", "shop-api")


def test_docker_not_answering_is_a_precondition(hosts: ScriptedHosts) -> None:
    script(hosts, "test-1")
    hosts["prod-1"].on(read.inspect_all(), Reply(
        1, "", "permission denied while trying to connect to the Docker daemon socket"))
    cfg = request.connect_config(REQ)

    async def go() -> None:
        await survey(hosts.pool(cfg), REQ)

    with pytest.raises(PreconditionFailed) as err:
        asyncio.run(go())
    assert err.value.exit_code == 3
    assert "prod-1: cannot list its containers: permission denied" in str(err.value)
