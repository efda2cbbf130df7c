"""init's pure part: from what hosts run (docker inspect captured on real engines) to a
proposed ferryman.yml, which must load through ferryman's own loader."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ferryman.config import load_config
from ferryman.errors import BadInput
from ferryman.init import classify as cl
from ferryman.init import request
from ferryman.init.facts import HostFacts, Seen
from ferryman.init.propose import Proposal, propose
from ferryman.init.read import PathInfo
from ferryman.init.render import render, scalar
from ferryman.init.survey import bind_sources, seen, to_probe

DATA = Path(__file__).parent / "data"
DEMO = json.loads((DATA / "flows" / "before_release.json").read_text())
CONFIG_FILE = "/opt/shop/app_config.json"


def captured(host: str, tail: list[str]) -> str:
    for call in DEMO["calls"]:
        if call["host"] == host and call["argv"][-len(tail):] == tail:
            return call["stdout"]
    raise KeyError((host, tail))


def demo_inspect(host: str) -> list[dict[str, Any]]:
    """web (docker run) and shop-api (docker-compose 1.29) as a bookworm host reported them."""
    return json.loads(captured(host, ["docker", "inspect", "--type", "container", "web",
                                      "shop-api"]))


def variant(base: dict[str, Any], name: str, image: str, *, mounts: list[dict[str, Any]] = (),
            exposed: list[int] = (), compose: tuple[str, str] | None = None,
            status: str = "running", ports: dict[int, int] | None = None) -> dict[str, Any]:
    """A real container's inspect output, renamed and given another image, mounts, ports."""
    d = copy.deepcopy(base)
    d["Name"] = "/" + name
    d["Config"]["Image"] = image
    d["Config"]["Healthcheck"] = None
    d["State"].pop("Health", None)
    d["State"]["Status"] = status
    d["Config"]["ExposedPorts"] = {f"{p}/tcp": {} for p in exposed}
    d["Config"]["Labels"] = {}
    if compose:
        d["Config"]["Labels"] = {"com.docker.compose.project": compose[0],
                                 "com.docker.compose.service": compose[1],
                                 "com.docker.compose.project.working_dir": "/opt/rag",
                                 "com.docker.compose.project.config_files": "docker-compose.yml"}
    d["Mounts"] = list(mounts)
    bound = {f"{c}/tcp": [{"HostIp": "", "HostPort": str(h)}] for h, c in (ports or {}).items()}
    d["NetworkSettings"]["Ports"] = bound
    d["HostConfig"]["PortBindings"] = bound
    return d


def volume(name: str, dest: str) -> dict[str, Any]:
    return {"Type": "volume", "Name": name, "Source": f"/var/lib/docker/volumes/{name}/_data",
            "Destination": dest, "RW": True}


def bind(src: str, dest: str, rw: bool = True) -> dict[str, Any]:
    return {"Type": "bind", "Source": src, "Destination": dest, "RW": rw}


REQ = request.build(["test=root@127.0.0.1:2201", "prod=root@127.0.0.1:2202"],
                    ["test=10.0.0.58", "prod=10.0.0.57"], identity_file="/keys/id",
                    known_hosts="/keys/known_hosts")


def demo_facts(extra: dict[str, list[dict[str, Any]]] | None = None,
               probes: dict[str, int] | None = None) -> list[HostFacts]:
    out = []
    for env, host in (("test", "test-1"), ("prod", "prod-1")):
        items = demo_inspect(host) + (extra or {}).get(env, [])
        h = HostFacts(env, host, f"root@127.0.0.1:{2201 if env == 'test' else 2202}",
                      seen(json.dumps(items)), addresses=["172.17.0.2", "172.18.0.1"])
        body = captured(host, ["cat", CONFIG_FILE])
        h.paths = {CONFIG_FILE: PathInfo(CONFIG_FILE, "file", files={CONFIG_FILE: body})}
        h.probes = {"http://127.0.0.1:8080/health": 200} if probes is None else probes
        out.append(h)
    return out


def loads(p: Proposal, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "ferryman.yml"
    path.write_text(render(p, ["test header"]))
    return load_config(path, environ={})


def test_demo_proposal_has_both_services_health_guard_and_policy(tmp_path: Path) -> None:
    p = propose(REQ, demo_facts())
    cfg = loads(p, tmp_path)

    assert list(cfg.services) == ["web", "api"]
    assert cfg.services["web"].compose is None
    assert cfg.services["web"].health.http == "http://127.0.0.1:8080/health"
    api = cfg.services["api"]
    assert (api.compose.project, api.compose.service) == ("shop", "api")
    assert api.container == "shop-api" and api.health.docker is True
    (guard,) = cfg.guards
    assert (guard.file, guard.key, guard.restart, guard.environments) == (
        CONFIG_FILE, "base_url", ["web", "api"], None)
    (g,) = p.guards
    assert "naming test, not prod" in g.why and "pollution" in g.why
    assert cfg.environments["prod"].policy.allowed_tags == ["v*"]
    assert cfg.environments["prod"].policy.confirm is True
    assert cfg.environments["test"].policy.allowed_tags == []
    assert cfg.environments["test"].own_address == "10.0.0.58"
    assert cfg.environments["prod"].hosts[0].label == "prod-1"
    assert cfg.environments["prod"].hosts[0].identity_file == "/keys/id"
    assert cfg.ssh.known_hosts == "/keys/known_hosts"
    assert cfg.project == "shop"
    assert cfg.data.stop == ["web", "api"] and cfg.data.volumes == []
    # The read-only config file is seen and left out of the data, and said so.
    assert [i.value for i in p.left_out] == [CONFIG_FILE]
    assert "read-only config file" in p.left_out[0].why
    assert p.undecided == []


def test_every_guessed_value_carries_a_comment_above_it() -> None:
    text = render(propose(REQ, demo_facts()), [])
    lines = text.splitlines()
    # (the guessed line, how far above it its comment ends: above its parent key, if any)
    for guessed, up in (("project: shop", 1), ("      http: http://127.0.0.1:8080/health", 2),
                        ("      docker: true", 2), ("    - web", 1), ("    - api", 1),
                        ("  - file: " + CONFIG_FILE, 1), ('      allowed_tags: ["v*"]', 2),
                        ("    address: 10.0.0.57", 1)):
        i = lines.index(guessed)
        assert lines[i - up].lstrip().startswith("# "), (guessed, lines[i - up])


def test_stores_stop_last_in_order_monitoring_never_stops(tmp_path: Path) -> None:
    web = demo_inspect("test-1")[0]
    extra = {
        env: [
            variant(web, "shop-cache", "redis:7-alpine", exposed=[6379],
                    mounts=[volume("shopcache", "/data")]),
            variant(web, "shop-db", "postgres:16", exposed=[5432],
                    mounts=[volume("pgdata", "/var/lib/postgresql/data")]),
            # Known by its port alone: a database image built in-house.
            variant(web, "ledger", "registry.example.org/acme/ledger:3", exposed=[3306]),
            variant(web, "es01" if env == "test" else "rag-es01-1",
                    "docker.elastic.co/elasticsearch/elasticsearch:8.11.3", exposed=[9200],
                    compose=("rag", "es01"), mounts=[volume("rag_esdata", "/usr/share/es")]),
            variant(web, "node-exporter", "prom/node-exporter:v1.8.0",
                    mounts=[bind("/proc", "/host/proc", rw=False)]),
            variant(web, "portainer", "portainer/portainer-ce:2.19",
                    mounts=[volume("portainer_data", "/data"),
                            bind("/var/run/docker.sock", "/var/run/docker.sock")]),
            variant(web, "old-job", "ferryman-app:v1", status="exited"),
        ]
        for env in ("test", "prod")
    }
    p = propose(REQ, demo_facts(extra))
    cfg = loads(p, tmp_path)

    assert list(cfg.services) == ["web", "api"]  # stores and monitoring are not released
    assert cfg.data.stop == ["web", "api", "es01", "rag-es01-1", "ledger", "shop-db",
                             "shop-cache"]
    why = {i.value: i.why for i in p.stop}
    assert "a search engine (image docker.elastic.co" in why["es01"]
    assert "compose names it differently" in why["es01"]
    assert "port 3306, MySQL's" in why["ledger"]
    assert "a database (image postgres:16)" in why["shop-db"] and "data.dumps" in why["shop-db"]
    assert "a cache (image redis:7-alpine)" in why["shop-cache"]
    assert cfg.data.never_stop == ["node-exporter", "portainer"]
    assert cfg.data.volumes == ["pgdata", "rag_esdata", "shopcache"]
    left = {i.value: i.why for i in p.left_out}
    assert "monitoring" in left["portainer_data"]
    assert left["old-job"].startswith("exited on test-1, exited on prod-1: only running")
    assert "/proc" not in left  # monitoring mounts are not looked at


def test_only_on_one_side_is_said(tmp_path: Path) -> None:
    web = demo_inspect("test-1")[0]
    extra = {"test": [variant(web, "worker", "ferryman-app:v2")],
             "prod": [variant(web, "legacy", "ferryman-app:v1")]}
    p = propose(REQ, demo_facts(extra))
    cfg = loads(p, tmp_path)
    assert list(cfg.services) == ["web", "worker", "api"]  # docker run, then compose
    worker = next(s for s in p.services if s.key == "worker")
    assert "not on prod: a release there creates it" in worker.why
    assert any("container legacy runs on prod only, not on test" in u for u in p.undecided)
    assert cfg.data.stop[:4] == ["web", "worker", "api", "legacy"]


def test_data_folders_code_and_nested_paths(tmp_path: Path) -> None:
    web = demo_inspect("test-1")[0]
    mounts = [bind("/srv/shop/files", "/files"), bind("/srv/shop/files/thumbs", "/thumbs"),
              bind("/opt/shop/src", "/app"), bind("/opt/shop/tpl", "/tpl"),
              bind("/opt/shop/conf", "/conf", rw=False), bind("/gone", "/gone"),
              {"Type": "volume", "Name": "f" * 64, "Source": "x", "Destination": "/cache",
               "RW": True}]
    extra = {"test": [variant(web, "files", "ferryman-app:v2", mounts=mounts)]}
    facts = demo_facts(extra)
    dirs = ["/srv/shop/files", "/srv/shop/files/thumbs", "/opt/shop/src", "/opt/shop/conf"]
    facts[0].paths.update({d: PathInfo(d, "dir") for d in dirs})
    facts[0].paths["/opt/shop/tpl"] = PathInfo("/opt/shop/tpl", "dir", code=True)
    facts[0].paths["/gone"] = PathInfo("/gone", "absent")
    p = propose(REQ, facts)
    cfg = loads(p, tmp_path)
    assert cfg.data.paths == ["/srv/shop/files"]
    left = {i.value: i.why for i in p.left_out}
    assert "inside /srv/shop/files" in left["/srv/shop/files/thumbs"]
    assert "where apps keep their code" in left["/opt/shop/src"]
    assert "source code" in left["/opt/shop/tpl"]
    assert "read-only folder" in left["/opt/shop/conf"]
    assert "absent" in left["/gone"]
    # A JSON file in that data folder naming an environment: a guard, with a word of caution.
    facts[0].paths["/srv/shop/files"].files = {
        "/srv/shop/files/site.json": '{"url": "https://10.0.0.58/"}'}
    guards = {g.file: g for g in propose(REQ, facts).guards}
    assert set(guards) == {CONFIG_FILE, "/srv/shop/files/site.json"}
    guard = guards["/srv/shop/files/site.json"]
    assert (guard.key, guard.restart) == ("url", ["files"])
    assert "a folder the app writes to (/srv/shop/files)" in guard.why
    assert guard.environments == ["test"]  # the file is on TEST only
    assert "anonymous volume" in left["f" * 64]
    # What init reads on the host for these: the bind sources, but not the machine's own.
    assert "/srv/shop/files" in bind_sources(facts[0].containers)


def test_health_without_answer_and_tags_without_v_are_left_to_decide(tmp_path: Path) -> None:
    facts = demo_facts(probes={})
    for c in facts[0].containers:
        c.image = c.image.replace(":v2", ":latest")
    p = propose(REQ, facts)
    cfg = loads(p, tmp_path)
    assert cfg.services["web"].health is None
    assert any(u.startswith("services.web.health: no HEALTHCHECK and no HTTP answer on "
                            "ports 8080") for u in p.undecided)
    assert any("without a v* tag (api: ferryman-app:latest, web: ferryman-app:latest)" in u
               for u in p.undecided)
    assert to_probe(facts[0].containers) == ["http://127.0.0.1:8080"]  # api has a HEALTHCHECK


def test_guards_in_yaml_lists_and_env_address_guessed(tmp_path: Path) -> None:
    req = request.build(["test=root@127.0.0.1:2201", "prod=root@127.0.0.1:2202"])
    facts = demo_facts()
    for h, me in zip(facts, ("172.30.30.58", "172.30.30.57"), strict=True):
        h.addresses = [me, "172.17.0.1"]
        body = json.dumps({"ragflow": {"base_url": "http://172.30.30.58:9380"},
                           "peers": ["http://172.30.30.58"], "name": "shop"})
        yml = "db:\n  host: 172.30.30.57\n"
        h.paths[CONFIG_FILE] = PathInfo(CONFIG_FILE, "file", files={CONFIG_FILE: body})
        h.paths["/opt/shop/conf"] = PathInfo("/opt/shop/conf", "dir",
                                             files={"/opt/shop/conf/db.yml": yml})
        for c in h.containers:
            c.mounts.append(cl.Mount("bind", "/opt/shop/conf", "/conf", False))
    p = propose(req, facts)
    cfg = loads(p, tmp_path)
    (guard,) = cfg.guards
    assert guard.key == "ragflow.base_url"
    # 172.17.0.1 is on both: it names neither. Each environment's address comes from the
    # config files naming one of its own addresses.
    assert cfg.environments["test"].address == "172.30.30.58"
    assert cfg.environments["prod"].address == "172.30.30.57"
    assert "guessed: the config files name it" in p.envs[0].address_why
    assert any("/opt/shop/conf/db.yml (yaml) key db.host" in u and "JSON only" in u
               for u in p.undecided)
    assert any("key peers.0" in u and "cannot be guarded" in u for u in p.undecided)


def test_loopback_host_without_clue_gets_a_guessed_address(tmp_path: Path) -> None:
    req = request.build(["test=root@127.0.0.1:2201", "prod=root@127.0.0.1:2202"])
    facts = demo_facts()
    facts[0].addresses, facts[1].addresses = ["192.0.2.8"], []
    p = propose(req, facts)
    cfg = loads(p, tmp_path)
    assert cfg.environments["test"].address == "192.0.2.8"
    assert cfg.environments["prod"].address is None
    assert any(u.startswith("environments.prod.address") for u in p.undecided)
    assert cfg.guards == []  # nothing names an address known to be an environment's


def test_roles_by_image_and_name() -> None:
    def role(image: str, name: str = "x", exposed: list[int] = ()) -> str:
        return cl.role(Seen(name, image, "running", exposed=list(exposed))).kind

    assert role("gcr.io/cadvisor/cadvisor:v0.49.1") == "monitoring"
    assert role("containrrr/watchtower") == "monitoring"
    assert role("portainer/agent:2.19") == "monitoring"
    assert role("busybox", name="node-exporter") == "monitoring"
    assert role("rediscommander/redis-commander") == "monitoring"
    assert role("bitnami/postgresql:16") == "database"
    assert role("mariadb:11") == "database"
    assert role("minio/minio:RELEASE.2024") == "object store"
    assert role("localhost:5000/redis:7") == "cache"
    assert role("acme/api:v3", exposed=[8080]) == "app"
    assert role("acme/api:v3", exposed=[6379]) == "cache"
    assert cl.image_words("registry:5000/a/b:c") == ["a", "b"]


@pytest.mark.parametrize("value", ["10.0.0.58", "true", "1.5", "1e3", "a: b", "#x", "v*",
                                   "null", "0x1f", "root@127.0.0.1:2201", "- x", "[a]",
                                   "http://127.0.0.1:8080/health", "it's", "ça", "", "~"])
def test_scalars_read_back_as_written(value: str) -> None:
    from ruamel.yaml import YAML

    assert YAML(typ="safe").load(f"k: {scalar(value)}\n") == {"k": value}


@pytest.mark.parametrize(("envs", "addresses", "said"), [
    ([], [], "--env is required"),
    (["test"], [], "--env 'test': expected NAME=[user@]host[:port]"),
    (["Test=root@h"], [], "'Test' is not an environment name"),
    (["test=root@:22"], [], "--env 'test=root@:22': expected test=user@host[:port]"),
    (["test=local"], [], "--env 'test=local'"),
    (["test=h", "test=h"], [], "h is given twice for test"),
    (["test=h"], ["prod=1.2.3.4"], "--address 'prod=1.2.3.4': no --env names environment"),
    (["test=h"], ["test=a b"], "--address 'test=a b': expected a hostname or an IP"),
])
def test_bad_options_name_the_option(envs: list[str], addresses: list[str], said: str) -> None:
    with pytest.raises(BadInput) as err:
        request.build(envs, addresses)
    assert said in str(err.value)


def test_hosts_get_names_where_the_hostname_says_nothing() -> None:
    req = request.build(["test=root@127.0.0.1:2201", "prod=root@203.0.113.7",
                         "prod=root@203.0.113.8"])
    assert [(h.address, h.name) for e in req.envs for h in e.hosts] == [
        ("root@127.0.0.1:2201", "test-1"), ("root@203.0.113.7", None),
        ("root@203.0.113.8", None)]
    cfg = request.connect_config(req)
    assert [h.label for h in cfg.environments["prod"].hosts] == ["203.0.113.7", "203.0.113.8"]
