"""A service named by compose project and service: found on each host by its labels, so one
name fits compose v1 (project_service_1) and v2 (project-service-1).

The listings are `docker ps -a` output captured from a bookworm host (Docker 20.10,
docker-compose 1.29) and a trixie host (Docker 26.1, docker compose 2.26), each running
`shop-api` (container_name set), `store` / `cart` without a container name, a one-off
`compose run` of cart, and two containers started by `docker run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from ferryman.config import Config
from ferryman.docker import compose as dcompose
from ferryman.docker.inspect import ComposeInfo
from ferryman.errors import PreconditionFailed
from ferryman.hosts import HostPool, locate_services
from ferryman.transport import Result, TransportError

DATA = Path(__file__).parent / "data"
V1 = dcompose.parse_listing((DATA / "compose_ps_v1.txt").read_text())
V2 = dcompose.parse_listing((DATA / "compose_ps_v2.txt").read_text())


def test_list_containers_argv() -> None:
    assert dcompose.list_containers() == [
        "docker", "ps", "-a", "--no-trunc", "--format",
        '{{.Names}}\t{{.Label "com.docker.compose.project"}}\t'
        '{{.Label "com.docker.compose.service"}}\t{{.Label "com.docker.compose.oneoff"}}']


def test_parse_listing_of_both_compose_versions() -> None:
    assert dcompose.Listed("store_cart_1", "store", "cart", False) in V1
    assert dcompose.Listed("store-cart-1", "store", "cart", False) in V2
    assert dcompose.Listed("web") in V1 and dcompose.Listed("plain") in V2
    assert [c.name for c in V2 if c.oneoff] == ["store-cart-run-8f35dab5727e"]
    # Legacy links list aliases after the name.
    assert dcompose.parse_listing("db,web/db\t\t\t\n\n") == [dcompose.Listed("db")]


@pytest.mark.parametrize(("listing", "cart"), [(V1, "store_cart_1"), (V2, "store-cart-1")])
def test_locate_by_labels_skips_one_offs(listing: list[dcompose.Listed], cart: str) -> None:
    assert dcompose.locate(listing, "store", "cart", []) == cart
    assert dcompose.locate(listing, "shop", "api", []) == "shop-api"
    assert dcompose.locate(listing, "shop", "nope", []) is None


def test_locate_skips_containers_a_release_set_aside() -> None:
    kept = dcompose.Listed("store-cart-1.ferryman-r20261130-101500", "store", "cart")
    assert dcompose.locate([kept, *V2], "store", "cart", []) == "store-cart-1"
    assert dcompose.locate([kept], "store", "cart", ["store-cart-1"]) is None


def test_locate_falls_back_to_a_name_that_exists() -> None:
    # Recreated by `docker run` (compose files gone): the name stays, the labels do not.
    plain = [dcompose.Listed("web"), dcompose.Listed("store_cart_1")]
    names = dcompose.default_names("store", "cart")
    assert names == ["store-cart-1", "store_cart_1"]
    assert dcompose.locate(plain, "store", "cart", ["cart", *names]) == "store_cart_1"
    assert dcompose.locate(plain, "store", "cart", ["web", *names]) == "web"


def test_locate_refuses_a_scaled_service() -> None:
    two = [dcompose.Listed(f"store-cart-{n}", "store", "cart") for n in (1, 2)]
    with pytest.raises(dcompose.AmbiguousService, match="store-cart-1, store-cart-2"):
        dcompose.locate(two, "store", "cart", [])


def config(**cart: object) -> Config:
    return Config.model_validate({
        "project": "shop",
        "environments": {
            "test": {"hosts": [{"name": "t1", "address": "root@10.0.0.1"}]},
            "prod": {"hosts": [{"name": "p1", "address": "root@10.0.0.2"},
                               {"name": "p2", "address": "root@10.0.0.3"}]},
        },
        "services": {"web": {}, "cart": {"compose": {"project": "store", "service": "cart"},
                                         **cart}},
    })


def test_locate_services_fallbacks() -> None:
    cfg = config()
    cart = cfg.services["cart"]
    assert locate_services([cart], V1, "t1") == {"cart": "store_cart_1"}
    # Nothing there yet (a bootstrap): compose v2's name; unreadable host: the same.
    assert locate_services([cart], [dcompose.Listed("web")], "t1") == {"cart": "store-cart-1"}
    assert locate_services([cart], None, "t1") == {"cart": "store-cart-1"}
    named = config(container="basket").services["cart"]
    assert locate_services([named], None, "t1") == {"cart": "basket"}
    assert locate_services([named], V2, "t1") == {"cart": "store-cart-1"}
    two = [dcompose.Listed(f"store-cart-{n}", "store", "cart") for n in (1, 2)]
    with pytest.raises(PreconditionFailed, match="cart on t1: compose service store/cart has 2"):
        locate_services([cart], two, "t1")


class Captured:
    """A host that answers `docker ps` with a captured listing, or cannot be reached."""

    def __init__(self, label: str, listing: Path | None) -> None:
        self.label = label
        self.listing = listing
        self.calls: list[list[str]] = []

    async def run(self, argv: Sequence[str], **_: object) -> Result:
        self.calls.append(list(argv))
        if self.listing is None:
            raise TransportError(self.label, "connection refused")
        return Result(self.label, list(argv), 0, self.listing.read_text())

    async def close(self) -> None:
        pass


def test_pool_resolves_each_host_once_and_placements_use_it() -> None:
    pool = HostPool(config())
    hosts = {("test", "t1"): Captured("t1", DATA / "compose_ps_v1.txt"),
             ("prod", "p1"): Captured("p1", DATA / "compose_ps_v2.txt"),
             ("prod", "p2"): Captured("p2", None)}
    pool._hosts.update(hosts)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="resolve"):
        pool.placements("prod")

    async def placed(env: str) -> list[str]:
        await pool.resolve(env)
        return [p.container for p in pool.placements(env)]

    async def go() -> None:
        # Checks of two hosts of one environment ask at the same time: both wait for it.
        seen = await asyncio.gather(placed("test"), placed("prod"), placed("prod"))
        assert seen[1] == seen[2]
        await pool.resolve("prod")

    asyncio.run(go())
    found = {(p.env, p.host, p.service): p.container
             for env in ("test", "prod") for p in pool.placements(env)}
    assert found == {
        ("test", "t1", "web"): "web", ("test", "t1", "cart"): "store_cart_1",
        ("prod", "p1", "web"): "web", ("prod", "p1", "cart"): "store-cart-1",
        # Unreachable: the fallback; the next command there reports the host.
        ("prod", "p2", "web"): "web", ("prod", "p2", "cart"): "store-cart-1",
    }
    assert all(len(h.calls) == 1 for h in hosts.values())
    assert hosts[("prod", "p1")].calls[0] == dcompose.list_containers()


def test_pool_without_compose_names_reads_nothing() -> None:
    cfg = config()
    del cfg.services["cart"]
    pool = HostPool(cfg)
    host = Captured("t1", DATA / "compose_ps_v1.txt")
    pool._hosts[("test", "t1")] = host  # type: ignore[assignment]
    asyncio.run(pool.resolve("test"))
    assert host.calls == []
    assert [p.container for p in pool.placements("test")] == ["web"]


def test_schema_compose_key() -> None:
    svc = config().services["cart"]
    assert svc.compose is not None and (svc.compose.project, svc.compose.service) == (
        "store", "cart")
    with pytest.raises(ValueError, match="service"):
        config(compose={"project": "store"})


def test_up_service_names_the_override_once() -> None:
    # compose v2's labels after a release: absolute paths, the override among them.
    info = ComposeInfo.from_labels({
        "com.docker.compose.project": "shop", "com.docker.compose.service": "api",
        "com.docker.compose.project.working_dir": "/opt/shop",
        "com.docker.compose.project.config_files":
            "/opt/shop/docker-compose.yml,/var/lib/ferryman/shop/compose/shop-api.yml"})
    assert info is not None
    assert dcompose.up_service(info, "/var/lib/ferryman/shop/compose/shop-api.yml", True) == [
        "docker", "compose", "-p", "shop", "--project-directory", "/opt/shop",
        "-f", "/opt/shop/docker-compose.yml", "-f", "/var/lib/ferryman/shop/compose/shop-api.yml",
        "up", "-d", "--no-deps", "api"]


def test_data_stop_names_compose_services_by_their_key() -> None:
    from ferryman.flows.data import Site

    cfg = Config.model_validate({
        "project": "shop",
        "environments": {"test": {"hosts": [{"name": "t1", "address": "root@10.0.0.1"}]}},
        "services": {"web": {}, "api": {"container": "shop-api"},
                     "cart": {"compose": {"project": "store", "service": "cart"}}},
        "data": {"stop": ["writer", "cart", "api"], "paths": ["/srv"]},
    })
    s = Site(cfg, "test", "t1", None, containers={"cart": "store_cart_1"})  # type: ignore[arg-type]
    # Only a compose-named service's key is translated; other entries are container names.
    assert s.stop == ["writer", "store_cart_1", "api"]
    assert s.service_containers == {"web": "web", "shop-api": "api", "store_cart_1": "cart"}


def test_config_refuses_one_compose_service_named_twice() -> None:
    from ferryman.config.schema import cross_check

    services = {"cart": {"compose": {"project": "store", "service": "cart"}},
                "basket": {"compose": {"project": "store", "service": "cart"}},
                "web": {"container": "cart"}}  # no clash: cart is found by its labels
    (issue,) = cross_check({"services": services})
    assert issue.loc == ("services", "basket", "compose") and issue.value == "store/cart"
    assert "already named by service 'cart'" in issue.expected
