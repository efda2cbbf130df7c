"""The pure parts of a blue-green switch: the upstream file, what is read back from nginx,
which port each side takes, the new side's run spec and health check, the config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ferryman.config import ConfigError, load_config
from ferryman.config.schema import Health
from ferryman.docker.inspect import parse_containers
from ferryman.docker.runspec import run_spec
from ferryman.errors import PreconditionFailed
from ferryman.flows import bluegreen as bg
from ferryman.nginx import commands as nc
from ferryman.nginx import upstream as up


def test_upstream_file_round_trip() -> None:
    text = up.render("ferryman_web", "web", 18081, "20261201-0455-ab12", 18409)
    assert "upstream ferryman_web {\n    server 127.0.0.1:18081 max_fails=0;\n}" in text
    assert "listen 127.0.0.1:18409;" in text
    assert "server_name ferryman_web.generation.ferryman;" in text
    assert 'return 200 "20261201-0455-ab12\\n";' in text
    assert up.parse(text) == up.Upstream(18081, "20261201-0455-ab12")
    # A file an operator wrote by hand has no generation.
    assert up.parse("upstream x {\n  server 127.0.0.1:8080;\n}\n") == up.Upstream(8080, None)
    assert up.parse("") == up.Upstream(None, None)


DUMP = """\
# configuration file /etc/nginx/sites-enabled/default:
server {
    listen 80;
    location / {
        proxy_pass http://ferryman_web;
    }
    location /api/ {
        proxy_pass http://ferryman_api/v1/;
    }
    # proxy_pass http://ferryman_admin;
    location /w2 { proxy_pass http://ferryman_web2; }
}
"""


@pytest.mark.parametrize(("name", "routed"), [
    ("ferryman_web", True), ("ferryman_api", True),  # with a URI after the name
    ("ferryman_admin", False),  # only in a comment
    ("ferryman_we", False),  # a prefix of another name is not that name
    ("ferryman_web2", True),
])
def test_routes_to(name: str, routed: bool) -> None:
    assert up.routes_to(DUMP, name) is routed


def test_the_new_side_takes_the_other_port() -> None:
    assert up.other_port((18080, 18081), 18080) == 18081
    assert up.other_port((18080, 18081), 18081) == 18080
    # The first switch: the live side is on the operator's own port.
    assert up.other_port((18080, 18081), 8080) == 18080
    assert up.other_port((18080, 18081), None) == 18080


def test_side_health_asks_the_side_on_its_own_port() -> None:
    h = Health(http="http://127.0.0.1:8080/health?deep=1", retries=3)
    side = bg.side_health(h, 18081)
    assert side is not None and side.http == "http://127.0.0.1:18081/health?deep=1"
    assert side.retries == 3 and h.http == "http://127.0.0.1:8080/health?deep=1"
    docker = Health(docker=True)
    assert bg.side_health(docker, 18081) is docker
    assert bg.side_health(None, 18081) is None


def _container(bindings: dict[str, list[dict[str, str]]]) -> dict:
    return {
        "Id": "c" * 64, "Name": "/web", "Image": "sha256:" + "1" * 64,
        "Config": {"Image": "app:v1", "Env": ["VERSION=v1"], "ExposedPorts": {"8080/tcp": {}}},
        "HostConfig": {"PortBindings": bindings, "RestartPolicy": {"Name": "unless-stopped"},
                       "NetworkMode": "default"},
        "NetworkSettings": {"Networks": {}}, "Mounts": [], "State": {"Status": "running",
                                                                       "Running": True},
    }


def test_beside_publishes_the_proxied_port_on_loopback_alone() -> None:
    raw = _container({"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    moved = bg.beside(raw, 8080, 18080, "web", "prod-1")
    assert moved["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert raw["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"] == "8080"  # a copy
    spec = run_spec(moved, None, "app:v2", name="web.ferryman-next")
    assert "127.0.0.1:18080:8080" in spec.create
    assert "8080:8080" not in spec.create
    assert spec.create[spec.create.index("--name") + 1] == "web.ferryman-next"


def test_beside_refuses_a_second_published_port() -> None:
    raw = _container({"8080/tcp": [{"HostIp": "", "HostPort": "8080"}],
                      "9090/tcp": [{"HostIp": "", "HostPort": "9090"}]})
    with pytest.raises(PreconditionFailed, match=r"publishes 9090/tcp besides its proxied"):
        bg.beside(raw, 8080, 18080, "web", "prod-1")


def test_published_port() -> None:
    facts = parse_containers(__import__("json").dumps([_container(
        {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}]})]))["web"]
    assert bg.published_port(facts, 8080) == 18081
    assert bg.published_port(facts, 9000) is None


def test_commands_are_exact() -> None:
    # nginx's own connections to that side: not the userland proxy's to the container
    assert nc.connections(18080) == ["ss", "-Htn", "state", "established", "dst",
                                     "127.0.0.1:18080"]
    assert nc.test("/usr/sbin/nginx") == ["/usr/sbin/nginx", "-t"]
    assert nc.reload("nginx") == ["nginx", "-s", "reload"]
    marker = nc.generation(18409, "ferryman_web.generation.ferryman", "/ferryman-generation")
    assert marker[:2] == ["sh", "-c"] and marker[3:] == [
        "ferryman-marker", "18409", "ferryman_web.generation.ferryman", "/ferryman-generation"]
    assert nc.install("/etc/nginx/conf.d/a b;$(x).conf")[-1] == "/etc/nginx/conf.d/a b;$(x).conf"


CONFIG = """\
project: p
environments:
  prod:
    hosts: [{{name: prod-1, address: root@127.0.0.1:2222}}]
services:
  my-web:
    proxy:
{proxy}
"""


def _load(tmp_path: Path, proxy: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "ferryman.yml"
    path.write_text(CONFIG.format(proxy=textwrap.indent(textwrap.dedent(proxy), "      ")))
    return load_config(path, {})


def test_proxy_config(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "port: 8080\nports: [18080, 18081]\n")
    svc = cfg.services["my-web"]
    assert svc.proxy is not None and svc.proxy.ports == (18080, 18081)
    assert svc.upstream == "ferryman_my_web"  # nginx names take no '-'
    assert svc.proxy.dir == "/etc/nginx/conf.d" and svc.proxy.drain == 30.0
    cfg = _load(tmp_path, "port: 8080\nports: [1, 2]\nupstream: shop_web\ndrain: 5s\n")
    assert cfg.services["my-web"].upstream == "shop_web"
    assert cfg.services["my-web"].proxy.drain == 5.0  # type: ignore[union-attr]


@pytest.mark.parametrize(("proxy", "key"), [
    ("port: 8080\nports: [18080, 18080]\n", "services.my-web.proxy.ports"),
    ("port: 8080\nports: [18080]\n", "services.my-web.proxy.ports[1]"),
    ("ports: [18080, 18081]\n", "services.my-web.proxy.port"),
    ("port: 8080\nports: [18080, 18081]\nupstream: 'a b'\n", "services.my-web.proxy.upstream"),
    ("port: 8080\nports: [18080, 18081]\ndrain: -1s\n", "services.my-web.proxy.drain"),
])
def test_proxy_config_errors_name_the_key(tmp_path: Path, proxy: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, proxy)
    assert key in [i.key for i in info.value.issues], info.value.issues


def test_canary_router_file() -> None:
    from ferryman.nginx import canary as cn
    text = cn.render("ferryman_web", "web", 18080, 18081, 25, "r1-25", 18409, 18410, "X-Canary")
    assert 'split_clients "$ferryman_web_key" $ferryman_web_split { 25% ferryman_web_new; ' \
           '* ferryman_web_old; }' in text
    assert "map $http_x_canary $ferryman_web_side" in text
    assert "upstream ferryman_web {\n    server 127.0.0.1:18410 max_fails=0;\n}" in text
    assert "upstream ferryman_web_new {\n    server 127.0.0.1:18081" in text
    assert "access_log /var/log/nginx/ferryman_web.canary.log ferryman_web_canary;" in text
    assert up.parse(text).generation == "r1-25"
    assert cn.header_variable("X-QA-Canary") == "$http_x_qa_canary"


LOG = """\
1764565200.001 127.0.0.1:18080 200
1764565200.002 127.0.0.1:18081 500
1764565200.003 127.0.0.1:18081 200
1764565200.004 127.0.0.1:18080 502
1764565200.005 127.0.0.1:18080 200
1764565200.006 - 499
garbage
"""


def test_canary_tally_and_judgement() -> None:
    from ferryman.nginx import canary as cn
    old, new = cn.tally(LOG, 18080, 18081)
    assert (old.requests, old.errors, new.requests, new.errors) == (3, 1, 2, 1)
    # Too few on the new side to judge, whatever its rate.
    assert not cn.judge(old, new, 2.0, 20).abort
    assert cn.judge(old, new, 2.0, 2).abort  # 50% against 33.3%: 16.7 points over
    assert not cn.judge(old, new, 20.0, 2).abort
    verdict = cn.judge(cn.Tally(1000, 1), cn.Tally(100, 10), 2.0, 20)
    assert verdict.abort and "new 10/100 5xx (10.0%), old 1/1000 5xx (0.1%)" in verdict.reason


@pytest.mark.parametrize(("weights", "expected"), [
    ("5,25,50,100", (5, 25, 50, 100)), ("10,50", (10, 50, 100)), ("100", (100,)),
])
def test_canary_weights(weights: str, expected: tuple[int, ...]) -> None:
    assert bg.Canary.parse(weights, 60).weights == expected


@pytest.mark.parametrize("weights", ["", "0,50", "50,25", "5,5,100", "5,x", "150"])
def test_canary_weights_refused(weights: str) -> None:
    from ferryman.errors import BadInput
    with pytest.raises(BadInput, match="--canary"):
        bg.Canary.parse(weights, 60)


class _Seq:
    """A host whose `ss` and `ps` answers follow a script, one per look."""

    label = "prod-1"

    def __init__(self, conns: list[int], workers: list[int]) -> None:
        self.conns, self.workers = conns, workers

    async def run(self, argv: list[str], **_: object):  # type: ignore[no-untyped-def]
        from ferryman.transport import Result
        if argv[0] == "ss":
            n = self.conns.pop(0) if len(self.conns) > 1 else self.conns[0]
            out = "".join(f"0 0 127.0.0.1:4{i} 127.0.0.1:18080\n" for i in range(n))
        else:
            n = self.workers.pop(0) if len(self.workers) > 1 else self.workers[0]
            out = f"{n}\n"
        return Result("prod-1", argv, 0, out)


def test_drain_waits_for_old_workers_as_well_as_connections(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import asyncio
    monkeypatch.setattr(bg, "POLL", 0.0)
    # No connection left at once, but a worker of the earlier configuration still holds a
    # request it has not passed on: not drained until it is gone, and seen so twice.
    host = _Seq(conns=[0, 0, 1, 0, 0, 0], workers=[2, 1, 1, 0, 0, 0])
    said = asyncio.run(bg.drain(host, 18080, cap=5))  # type: ignore[arg-type]
    assert said.startswith("no connection left to 127.0.0.1:18080 and no nginx worker")
    assert host.workers == [0] and host.conns == [0]  # it looked until both stayed at zero
    # Long-lived connections: the cap ends the wait and says what is left.
    said = asyncio.run(bg.drain(_Seq([4], [2]), 18080, cap=0.05))  # type: ignore[arg-type]
    assert said.startswith("4 connection(s) to 127.0.0.1:18080 and 2 nginx worker(s)")
