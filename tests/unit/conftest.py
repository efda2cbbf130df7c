"""Fixtures of the flow unit tests: scripted hosts, and a ferryman.yml shaped like the demo's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakehost import ScriptedHosts

from ferryman.config import Config, load_config

# The demo's environments (TEST 10.0.0.58, PROD 10.0.0.57; polluted config file on PROD), with
# health checks that look once: a unit test never waits between retries. Addresses are never
# contacted: every host is scripted.
CONFIG = """\
version: 1
project: shop
environments:
  test:
    address: 10.0.0.58
    hosts:
{test_hosts}
  prod:
    address: 10.0.0.57
    hosts:
{prod_hosts}
    policy:
      allowed_tags: [{allowed}]
services:
  web:
    health:
      http: http://127.0.0.1:8080/health
      retries: 1
{web_hosts}
  api:
    container: shop-api
    health:
      docker: true
      retries: 1
{extra_services}
guards:
  - file: /opt/shop/app_config.json
    key: base_url
    restart: [api]
{extra}"""


def _hosts(labels: list[str], port: int) -> str:
    return "\n".join(f"      - name: {label}\n        address: root@127.0.0.1:{port + n}"
                     for n, label in enumerate(labels))


@pytest.fixture()
def hosts() -> Iterator[ScriptedHosts]:
    scripted = ScriptedHosts()
    yield scripted
    # A command nobody scripted fails the test, also when the flow caught the error.
    assert scripted.unexpected() == {}


MakeConfig = Callable[..., Config]


@pytest.fixture()
def make_config(tmp_path: Path) -> MakeConfig:
    def make(test_hosts: list[str] | None = None, prod_hosts: list[str] | None = None,
             allowed: str = '"v*"', web_hosts: list[str] | None = None,
             extra_services: str = "", extra: str = "") -> Config:
        text = CONFIG.format(
            test_hosts=_hosts(test_hosts or ["test-1"], 2201),
            prod_hosts=_hosts(prod_hosts or ["prod-1"], 2301), allowed=allowed,
            web_hosts=f"    hosts: [{', '.join(web_hosts)}]" if web_hosts else "",
            extra_services=extra_services, extra=extra)
        path = tmp_path / "ferryman.yml"
        path.write_text(text)
        return load_config(path)

    return make
