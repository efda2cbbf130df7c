"""init on a richer scene captured from real engines (tests/unit/capture_init.py): TEST on
Docker 20.10 with docker-compose v1, PROD on Docker 26.1 with the compose v2 plugin, each
with the demo app, a compose project of stores, a cache with a volume and a node-exporter;
a worker on TEST only, a portainer on PROD only. Replayed through scripted hosts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakehost import Capture, ScriptedHosts

from ferryman.config import load_config
from ferryman.init import request
from ferryman.init.facts import HostFacts
from ferryman.init.propose import Proposal, propose
from ferryman.init.render import render
from ferryman.init.survey import survey

CAPTURE = Capture.load("init_scene")
PORTS = CAPTURE.source["ports"]
ENVS = [f"test=root@127.0.0.1:{PORTS['test-1']}", f"prod=root@127.0.0.1:{PORTS['prod-1']}"]


def read(hosts: ScriptedHosts, req: request.Request) -> list[HostFacts]:
    for label in ("test-1", "prod-1"):
        hosts[label].replay(CAPTURE)
    return asyncio.run(survey(hosts.pool(request.connect_config(req)), req))


def written(p: Proposal, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "ferryman.yml"
    path.write_text(render(p, []))
    return load_config(path, environ={})


def test_scene_across_compose_v1_and_v2(hosts: ScriptedHosts, tmp_path: Path) -> None:
    req = request.build(ENVS, ["test=10.0.0.58", "prod=10.0.0.57"])
    p = propose(req, read(hosts, req))
    cfg = written(p, tmp_path)

    assert list(cfg.services) == ["web", "worker", "api"]
    assert cfg.services["api"].compose.service == "api"
    worker = next(s for s in p.services if s.key == "worker")
    assert "not on prod: a release there creates it" in worker.why
    # The stores of compose project rag are named rag_es01_1 by v1 and rag-es01-1 by v2:
    # each host stops the one it has, after the writers, search engine before database.
    assert cfg.data.stop == ["web", "worker", "api", "rag-es01-1", "rag_es01_1", "rag-mysql-1",
                             "rag_mysql_1", "shop-cache"]
    assert cfg.data.never_stop == ["node-exporter", "portainer"]
    assert cfg.data.volumes == ["rag_esdata", "rag_mysql_data", "shopcache"]
    assert cfg.data.paths == ["/srv/shop/files"]
    left = {i.value: i.why for i in p.left_out}
    assert set(left) == {"one-off-job", "/opt/shop/app_config.json", "portainer_data"}
    assert "/proc" not in left and "/var/run/docker.sock" not in left
    (guard,) = cfg.guards
    assert guard.key == "base_url" and guard.restart == ["web", "api"]
    assert p.undecided == ["services.worker.health: no HEALTHCHECK and no published port; "
                           "running counts as healthy until you set health"]


def test_scene_without_addresses_guesses_them_from_the_hosts(hosts: ScriptedHosts,
                                                             tmp_path: Path) -> None:
    req = request.build(ENVS)
    facts = read(hosts, req)
    # The container bridges (docker0, br-...) are the same on both hosts and are left out.
    assert [f.addresses for f in facts] == [["172.17.0.4"], ["172.17.0.5"]]
    p = propose(req, facts)
    cfg = written(p, tmp_path)
    assert cfg.environments["test"].address == "172.17.0.4"
    assert cfg.environments["prod"].address == "172.17.0.5"
    assert "guessed: the first address of test-1" in p.envs[0].address_why
    assert [u.split(":")[0] for u in p.undecided if u.startswith("environments.")] == [
        "environments.test.address", "environments.prod.address"]
    # base_url names 10.0.0.58, which nothing says is an environment's: no guard guessed.
    assert cfg.guards == []
