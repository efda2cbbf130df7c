"""Loading valid configurations: resolved values, substitution, secrets and display()."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ferryman.config import Config, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ferryman.yml"

FULL = """\
version: 1
project: shop
log_dir: /var/log/ferryman
keep_releases: 5
ssh:
  known_hosts: ~/.ssh/ferryman_known_hosts
  accept_unknown_hosts: true
  connect_timeout: 1m30s
  command_timeout: 2m
environments:
  test:
    address: 10.0.0.8
    hosts:
      - address: deploy@10.0.0.8:2222
        name: t1
        identity_file: ~/.ssh/id_ed25519
        jump: bastion.example.org
      - address: local
  prod:
    hosts:
      - address: "[fe80::1]:22"
        password: ${PROD_PW}
        accept_unknown_host_key: false
    policy:
      allowed_tags: ["v*", "release-*"]
      confirm: true
services:
  api:
    container: shop-api
    hosts: [t1, fe80::1]
    health:
      http: https://127.0.0.1:8443/health
      timeout: 500ms
      retries: 3
      interval: 1
      start_period: 1h
  web:
    health:
      docker: true
  worker:
data:
  volumes: [shop_db]
  paths: [/srv/shop/uploads]
  stop: [shop-api, web]
  never_stop: [node-exporter]
  backup_dir: /backups
  keep: 2
guards:
  - file: /srv/shop/config.json
    key: upstream.base_url
    restart: [api]
    environments: [prod]
"""


def write(tmp_path: Path, text: str, name: str = "ferryman.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_full_config_resolves_every_field(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), {"PROD_PW": "pa55word", "HOME": "/home/op"})

    assert isinstance(config, Config)
    assert config.project == "shop"
    assert config.log_dir == "/var/log/ferryman"
    assert config.keep_releases == 5
    assert config.source == str(tmp_path / "ferryman.yml")
    assert config.ssh.accept_unknown_hosts is True
    assert config.ssh.connect_timeout == 90.0
    assert config.ssh.command_timeout == 120.0
    assert not config.ssh.known_hosts.startswith("~")
    assert config.ssh.known_hosts.endswith("/.ssh/ferryman_known_hosts")

    test = config.environments["test"]
    t1, local = test.hosts
    assert (t1.user, t1.hostname, t1.port, t1.is_local, t1.label) == (
        "deploy",
        "10.0.0.8",
        2222,
        False,
        "t1",
    )
    assert t1.identity_file.endswith("/.ssh/id_ed25519")
    assert t1.jump_address.hostname == "bastion.example.org"
    assert local.is_local and local.label == "local" and local.user is None
    assert test.own_address == "10.0.0.8"
    assert test.policy.confirm is False

    prod = config.environments["prod"]
    (p1,) = prod.hosts
    assert (p1.user, p1.hostname, p1.port) == (None, "fe80::1", 22)
    assert p1.password.get_secret_value() == "pa55word"
    assert p1.accept_unknown_host_key is False
    assert t1.accept_unknown_host_key is None
    assert prod.own_address == "fe80::1"
    assert prod.policy.confirm is True
    assert prod.policy.allowed_tags == ["v*", "release-*"]

    api, web, worker = config.services["api"], config.services["web"], config.services["worker"]
    assert (api.name, api.container_name) == ("api", "shop-api")
    assert (web.name, web.container_name) == ("web", "web")
    assert worker.container_name == "worker" and worker.health is None and worker.hosts is None
    assert api.health.http == "https://127.0.0.1:8443/health"
    assert (api.health.timeout, api.health.interval, api.health.start_period) == (0.5, 1.0, 3600.0)
    assert api.health.retries == 3
    assert web.health.docker is True and web.health.http is None
    assert web.health.timeout == 5.0 and web.health.retries == 30
    assert api.runs_on(t1) and not api.runs_on(local)
    assert web.runs_on(local)

    assert config.data.volumes == ["shop_db"]
    assert config.data.stop == ["shop-api", "web"]
    assert config.data.backup_dir == "/backups"
    assert config.data.keep == 2

    (guard,) = config.guards
    assert guard.format == "json" and guard.must_name == "self"
    assert guard.key_path == ["upstream", "base_url"]
    assert guard.applies_to("prod") and not guard.applies_to("test")
    assert config.secrets == {"pa55word"}


def test_defaults_for_minimal_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        environments:
          test:
            hosts: [{address: web1}]
        """,
    )
    config = load_config(path, {})
    assert config.version == 1
    assert config.log_dir == ".ferryman/logs"
    assert config.keep_releases == 3
    assert config.ssh.known_hosts is None
    assert config.ssh.accept_unknown_hosts is False
    assert (config.ssh.connect_timeout, config.ssh.command_timeout) == (10.0, 600.0)
    assert config.services == {} and config.data is None and config.guards == []
    env = config.environments["test"]
    assert env.policy.allowed_tags == [] and env.policy.confirm is False
    assert env.hosts[0].label == "web1" and env.own_address == "web1"
    assert config.secrets == set()


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE, {})
    assert config.project == "ragflowauth"
    assert config.environments["test"].hosts[0].address == "root@172.30.30.58"
    assert config.environments["test"].own_address == "172.30.30.58"
    prod = config.environments["prod"]
    assert prod.hosts[0].address == "root@172.30.30.57"
    assert prod.policy.allowed_tags == ["v*"] and prod.policy.confirm is True
    assert prod.policy.allows("v2.1.0") and not prod.policy.allows("latest")
    assert set(config.services) == {"ragflowauth-backend", "ragflowauth-frontend"}
    backend = config.services["ragflowauth-backend"]
    assert backend.health.http == "http://127.0.0.1:8001/health"
    assert "ragflow_compose_mysql_data" in config.data.volumes
    assert config.data.paths == ["/opt/ragflowauth/data"]
    assert config.data.stop[0] == "ragflowauth-backend"
    assert config.data.never_stop == ["node-exporter", "portainer"]
    assert config.guards[0].file == "/opt/ragflowauth/ragflow_config.json"
    assert config.guards[0].restart == ["ragflowauth-backend"]
    json.dumps(config.display())


SUBST = """\
project: ${PROJECT}
log_dir: ${LOGS:-/tmp/logs}
environments:
  test:
    hosts:
      - address: ${USER_NAME}@${TEST_HOST}
"""


def test_dotenv_beside_the_file_is_used(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# values for ferryman\n"
        "export PROJECT=shop\n"
        "USER_NAME='deploy'\n"
        'TEST_HOST="10.1.1.1"   # the test box\n'
    )
    config = load_config(write(tmp_path, SUBST), {})
    assert config.project == "shop"
    assert config.environments["test"].hosts[0].address == "deploy@10.1.1.1"
    assert config.log_dir == "/tmp/logs"


def test_environ_beats_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PROJECT=from-dotenv\nUSER_NAME=root\nTEST_HOST=h\n")
    config = load_config(write(tmp_path, SUBST), {"PROJECT": "from-environ"})
    assert config.project == "from-environ"
    assert config.environments["test"].hosts[0].user == "root"


def test_default_used_when_unset_or_empty_and_value_wins_otherwise(tmp_path: Path) -> None:
    path = write(tmp_path, SUBST)
    base = {"PROJECT": "p", "USER_NAME": "u", "TEST_HOST": "h"}
    assert load_config(path, base).log_dir == "/tmp/logs"
    assert load_config(path, {**base, "LOGS": ""}).log_dir == "/tmp/logs"
    config = load_config(path, {**base, "LOGS": "/srv/logs"})
    assert config.log_dir == "/srv/logs"
    # A default written in the file is no secret; a value from the environment is.
    assert "/tmp/logs" not in load_config(path, base).secrets
    assert "/srv/logs" in config.secrets


def test_double_dollar_is_a_literal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        log_dir: "$${HOME}/logs-${N}"
        environments:
          test:
            hosts: [{address: h}]
        """,
    )
    config = load_config(path, {"N": "7", "HOME": "/root"})
    assert config.log_dir == "${HOME}/logs-7"


def test_substituted_number_is_converted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        keep_releases: ${KEEP}
        environments:
          test:
            hosts: [{address: h}]
        """,
    )
    assert load_config(path, {"KEEP": "4"}).keep_releases == 4


def test_display_masks_secrets_and_gives_seconds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        ssh:
          connect_timeout: 2m
        environments:
          prod:
            hosts:
              - address: root@${PROD_HOST}:22
                password: literal-pw
              - address: ops@other
                password: ${PW}
        """,
    )
    config = load_config(path, {"PROD_HOST": "10.9.9.9", "PW": "s3cr3t"})
    shown = config.display()
    json.dumps(shown)  # plain data only
    hosts = shown["environments"]["prod"]["hosts"]
    assert hosts[0]["address"] == "root@***:22"
    assert hosts[0]["password"] == "***"
    assert hosts[1]["password"] == "***"
    assert shown["ssh"]["connect_timeout"] == 120.0
    text = json.dumps(shown)
    for secret in ("10.9.9.9", "s3cr3t", "literal-pw"):
        assert secret not in text
    assert config.secrets >= {"10.9.9.9", "s3cr3t", "literal-pw"}
    assert "secrets" not in config.model_dump() and "source" not in config.model_dump()
    # The real values stay available to the code that needs them.
    assert config.environments["prod"].hosts[0].hostname == "10.9.9.9"


def test_x_keys_hold_anchors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        x-host: &host
          identity_file: /keys/id
        project: p
        environments:
          test:
            hosts:
              - <<: *host
                address: h
        """,
    )
    config = load_config(path, {})
    assert config.environments["test"].hosts[0].identity_file == "/keys/id"


def test_default_environ_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_TEST_PROJECT", "from-os")
    path = write(
        tmp_path,
        """\
        project: ${FERRYMAN_TEST_PROJECT}
        environments:
          test:
            hosts: [{address: h}]
        """,
    )
    assert load_config(str(path)).project == "from-os"


def test_error_str_lists_every_issue(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        project: p
        environments:
          test:
            hosts: [{address: "a b"}, {address: "c:0"}]
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.issues) == 2
    assert all(line.startswith(f"{path}:4: environments.test.hosts[") for line in lines)
