"""`ferryman init` on real hosts: the demo's TEST and PROD (web by docker run, api by
docker-compose, PROD's base_url naming TEST), plus on each a cache holding a named volume and
a node-exporter. init proposes, changes nothing on the hosts, and what it writes is a
ferryman.yml that `config check` passes and a real release works with."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labenv import Run, ferryman

from ferryman.config import load_config
from ferryman.lab.demo import ADDRESSES, CONFIG_FILE, Demo, down, up

PREFIX = f"ferryman-pytest-init-{uuid.uuid4().hex[:6]}"
EXTRA = ("docker tag ferryman-app:v1 redis:7-alpine"
         " && docker tag ferryman-app:v1 prom/node-exporter:v1.8.0"
         " && docker run -d --name shop-cache --restart unless-stopped -v shopcache:/data"
         " redis:7-alpine >/dev/null"
         " && docker run -d --name node-exporter prom/node-exporter:v1.8.0 >/dev/null")
# What init must leave as it was: every container (state, start time, restarts), volumes,
# the config file, and no ferryman state on the host.
FOOTPRINT = ("docker inspect --format '{{.Name}} {{.State.Status}} {{.State.StartedAt}} "
             "{{.RestartCount}}' $(docker ps -aq) | sort; docker volume ls -q | sort; "
             f"sha256sum {CONFIG_FILE}; ls /var/lib/ferryman 2>&1")


def _demo(factory: pytest.TempPathFactory, prefix: str,
          kinds: dict[str, str] | None = None) -> Iterator[Demo]:
    workdir = factory.mktemp("init") / "demo"
    made = up(workdir, prefix=prefix, kinds=kinds)
    try:
        for host in made.hosts.values():
            made.lab.sh(host, EXTRA)
        yield made
    finally:
        down(workdir, prefix)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    yield from _demo(tmp_path_factory, PREFIX)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """TEST on Docker 20.10 with docker-compose v1, PROD on 26.1 with the compose v2 plugin."""
    yield from _demo(tmp_path_factory, PREFIX + "-mixed", {"prod": "trixie"})


def init(d: Demo, config: Path, *args: str, prod_port: int | None = None) -> Run:
    return ferryman(config, "init",
                    "--env", f"test=root@127.0.0.1:{d.hosts['test'].port}",
                    "--env", f"prod=root@127.0.0.1:{prod_port or d.hosts['prod'].port}",
                    "--address", f"test={ADDRESSES['test']}",
                    "--address", f"prod={ADDRESSES['prod']}",
                    "-i", str(d.lab.key_path), "--known-hosts", str(d.lab.known_hosts), *args)


def footprint(d: Demo) -> dict[str, str]:
    return {role: d.lab.sh(host, FOOTPRINT, check=False) for role, host in d.hosts.items()}


def test_init_reads_without_changing_anything(demo: Demo, tmp_path: Path) -> None:
    before = footprint(demo)
    target = tmp_path / "ferryman.yml"
    shown = init(demo, target)
    raw = init(demo, target, "--json")
    assert footprint(demo) == before
    assert shown.code == 0, shown.err
    assert "read-only" in shown.err and "nothing was changed on test-1, prod-1" in shown.err
    assert not target.exists()  # printed, not written

    # The proposal, as printed: every guessed value explained.
    assert "# the image's own HEALTHCHECK" in shown.out
    assert "GET http://127.0.0.1:8080/health answered 200 on test-1" in shown.out
    assert "naming test, not prod" in shown.out

    assert raw.code == 0, raw.err
    found = raw.json()
    assert found["read_only"] is True
    hosts = {h["host"]: h for h in found["hosts"]}
    assert set(hosts) == {"test-1", "prod-1"}
    names = {c["name"] for c in hosts["prod-1"]["containers"]}
    assert {"web", "shop-api", "shop-cache", "node-exporter"} <= names
    assert hosts["test-1"]["probes"]["http://127.0.0.1:8080/health"] == 200
    config = hosts["prod-1"]["paths"][CONFIG_FILE]
    assert config["kind"] == "file"
    assert json.loads(config["files"][CONFIG_FILE])["base_url"] == "http://10.0.0.58:9380"
    assert found["yaml"] == shown.out


@pytest.mark.parametrize("pair", ["demo", "mixed"])
def test_written_proposal_passes_config_check_and_releases(
        pair: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    demo: Demo = request.getfixturevalue(pair)
    target = tmp_path / "ferryman.yml"
    made = init(demo, target, "--write")
    assert made.code == 0, made.err
    assert f"wrote {target}: 2 services, 1 volume," in made.err

    cfg = load_config(target)
    assert list(cfg.services) == ["web", "api"]
    assert cfg.services["web"].health.http == "http://127.0.0.1:8080/health"
    assert cfg.services["api"].compose.project == "shop"
    assert cfg.services["api"].health.docker is True
    assert cfg.data.volumes == ["shopcache"]
    assert cfg.data.stop == ["web", "api", "shop-cache"]  # writers first, the cache last
    assert cfg.data.never_stop == ["node-exporter"]
    (guard,) = cfg.guards
    assert (guard.file, guard.key, guard.restart) == (CONFIG_FILE, "base_url", ["web", "api"])
    assert cfg.environments["prod"].policy.allowed_tags == ["v*"]
    assert cfg.environments["prod"].policy.confirm is True

    check = ferryman(target, "config", "check")
    assert check.code == 0, check.err
    assert "valid (2 environments, 2 services)" in check.err

    release = ferryman(target, "release", "test", "prod", "--yes")
    assert release.code == 0, release.err
    prod = demo.hosts["prod"]
    assert demo.lab.sh(prod, "docker inspect --format '{{.Config.Image}}' web").strip() == \
        "ferryman-app:v2"
    # The guard init proposed mended PROD's base_url.
    body = json.loads(demo.lab.sh(prod, f"cat {CONFIG_FILE}"))
    assert body["base_url"] == f"http://{ADDRESSES['prod']}:9380"


def test_existing_file_is_kept_unless_force(demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "ferryman.yml"
    target.write_text("# mine\n")
    refused = init(demo, target, "--write")
    assert refused.code == 2
    assert "exists: init does not write over it" in refused.err and "--force" in refused.err
    assert target.read_text() == "# mine\n"

    forced = init(demo, target, "--write", "--force")
    assert forced.code == 0, forced.err
    (backup,) = tmp_path.glob("ferryman.yml.bak-*")
    assert backup.read_text() == "# mine\n"
    assert load_config(target).services


def test_unreachable_host_exits_3_and_writes_nothing(demo: Demo, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nobody listens once the socket closes
    target = tmp_path / "ferryman.yml"
    run = init(demo, target, "--write", prod_port=closed)
    assert run.code == 3, run.err
    assert "prod-1" in run.err
    assert not target.exists()


def test_bad_env_names_the_option(tmp_path: Path) -> None:
    run = ferryman(tmp_path / "ferryman.yml", "init", "--env", "test", "--write")
    assert run.code == 2
    assert "--env 'test': expected NAME=[user@]host[:port]" in run.err
    assert not (tmp_path / "ferryman.yml").exists()
