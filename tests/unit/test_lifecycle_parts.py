"""The release lifecycle's pure parts: the hook's one-off `docker run`, and the config keys
(hooks, accepts_from, soak, watch) with errors that name the key."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ferryman.config import ConfigError, load_config
from ferryman.docker.composefile import Edit, ImageLine, durable_edit, image_line, solve_variable
from ferryman.docker.hooks import hook_name, hook_run, remove_hook, wrapped
from ferryman.errors import BadInput
from ferryman.flows.envvalues import env_of_argv, foreign, lacking
from ferryman.flows.policy import check_accepts, check_tags, refs_for_tag, repository
from ferryman.record import History, Record

DATA = Path(__file__).parent / "data"


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"runspec_{name}.json").read_text())


FULL = _load("full")[0]
V1 = _load("image_v1")[0]
OTHERS = {c["Name"].lstrip("/"): c for c in _load("others")}


def test_hook_run_takes_env_network_and_mounts_but_not_ports_or_identity_of_service() -> None:
    argv, notes = hook_run(FULL, V1, "ferryman-app:v2", ["python", "manage.py", "migrate"],
                           name=hook_name("web", "r1", "before"))
    assert argv[:5] == ["docker", "run", "--rm", "--name", "web.ferryman-r1-before"]
    # the command is the hook's argv, whatever the image's entrypoint
    i = argv.index("--entrypoint")
    assert argv[i:] == ["--entrypoint", "python", "ferryman-app:v2", "manage.py", "migrate"]
    joined = " ".join(argv)
    # the first network, without the service's aliases or static address
    assert argv[5:7] == ["--network", "ferryman-rs-a"]
    assert "--network-alias" not in argv and "--ip" not in argv and "--mac-address" not in argv
    # named volumes by name, binds as written, tmpfs
    assert "ferryman-rs-data:/data" in argv
    assert "-v" in argv and "/tmp/ferryman-rs-bind:/etc/app:ro" in argv
    assert "--tmpfs" in argv
    # the operator's env (not the image's defaults), user
    assert "APP_MODE=prod" in argv and "GREETING=hello big world" in argv
    assert argv[argv.index("--user") + 1] == "1000:1000"
    # never: ports, restart policy, labels (compose's least of all), healthcheck, -t/-i
    for flag in ("-p", "--publish", "--restart", "--label", "--health-cmd", "-t", "-i",
                 "--expose"):
        assert flag not in argv, (flag, joined)
    assert notes == []


def test_hook_run_shares_the_namespace_modes() -> None:
    host, _ = hook_run(OTHERS["ferryman-rs-host"], None, "img", ["true"], name="n")
    assert host[host.index("--network") + 1] == "host"
    joined, _ = hook_run(OTHERS["ferryman-rs-join"], None, "img", ["true"], name="n")
    assert joined[joined.index("--network") + 1].startswith("container:")
    plain, _ = hook_run(OTHERS["ferryman-rs-plain"], None, "img", ["true"], name="n")
    assert not any(a.startswith("com.docker.compose") for a in plain)


def test_hook_run_rewrites_carried_values_for_a_bootstrap() -> None:
    argv, notes = hook_run(FULL, V1, "img", ["true"], name="n",
                           rewrite=lambda v: v.replace("10.0.0.57", "10.9.9.9"))
    assert "APP_URL=http://10.9.9.9:8080/" in argv
    assert any("APP_URL" in n for n in notes)


def test_wrapped_and_remove_are_argv_with_values_positional() -> None:
    odd = ["sh", "-c", "echo a b;$(touch pwned)"]
    assert wrapped(odd) == ["sh", "-c", 'exec "$@" 2>&1', "-", *odd]
    assert remove_hook("web.ferryman-r1-before") == ["docker", "rm", "-f",
                                                     "web.ferryman-r1-before"]


BASE = """\
project: p
environments:
  test:
    hosts: [{address: root@t}]
  prod:
    hosts: [{address: root@p}]
"""


def load(tmp_path: Path, extra: str) -> Any:
    path = tmp_path / "ferryman.yml"
    path.write_text(BASE + textwrap.dedent(extra))
    return load_config(path, {})


def issues(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    return [str(i) for i in info.value.issues]


def test_hooks_short_and_long_form(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
        data:
          volumes: [db]
        services:
          web:
            before_switch: [python, manage.py, migrate]
            after_switch:
              run: [sh, -c, "echo done"]
              timeout: 30s
              changes_data: true
        """)
    web = cfg.services["web"]
    assert web.before_switch.run == ["python", "manage.py", "migrate"]
    assert web.before_switch.timeout == 600 and not web.before_switch.changes_data
    assert web.after_switch.timeout == 30 and web.after_switch.changes_data


@pytest.mark.parametrize(("extra", "key", "expected"), [
    ("services:\n  web:\n    before_switch: []\n", "services.web.before_switch.run",
     "at least 1"),
    ("services:\n  web:\n    before_switch: {run: [x], timeout: 0}\n",
     "services.web.before_switch.timeout", "above zero"),
    ("services:\n  web:\n    before_switch: {run: [x], timeot: 3}\n",
     "services.web.before_switch.timeot", ""),
    ("services:\n  web:\n    before_switch: {run: [x], changes_data: true}\n",
     "services.web.before_switch.changes_data", "a data section"),
])
def test_hook_errors_name_the_key(tmp_path: Path, extra: str, key: str, expected: str) -> None:
    found = issues(tmp_path, extra)
    assert any(key in i and expected in i for i in found), found


def test_policy_accepts_from_soak_and_watch(tmp_path: Path) -> None:
    text = BASE.replace("  prod:\n    hosts: [{address: root@p}]\n",
                        "  prod:\n    hosts: [{address: root@p}]\n    watch: 20s\n"
                        "    policy: {accepts_from: [test], soak: 30m}\n")
    path = tmp_path / "ferryman.yml"
    path.write_text(text)
    cfg = load_config(path, {})
    prod = cfg.environments["prod"]
    assert prod.watch == 20 and prod.policy.accepts_from == ["test"]
    assert prod.policy.soak == 1800
    assert cfg.environments["test"].watch == 0


@pytest.mark.parametrize(("policy", "key", "expected"), [
    ("{accepts_from: [staging]}", "environments.prod.policy.accepts_from[0]",
     "another environment name: test"),
    ("{accepts_from: [prod]}", "environments.prod.policy.accepts_from[0]", "another"),
    ("{soak: 30m}", "environments.prod.policy.soak", "together with accepts_from"),
    ("{accepts_from: [test], soak: soon}", "environments.prod.policy.soak", "duration"),
])
def test_policy_errors_name_the_key(tmp_path: Path, policy: str, key: str,
                                    expected: str) -> None:
    text = BASE.replace("  prod:\n    hosts: [{address: root@p}]\n",
                        f"  prod:\n    hosts: [{{address: root@p}}]\n    policy: {policy}\n")
    path = tmp_path / "ferryman.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    found = [str(i) for i in info.value.issues]
    assert any(key in i and expected in i for i in found), found


# --- policy: --tag and accepts_from --------------------------------------------------------

def _cfg(tmp_path: Path, policy: str) -> Any:
    text = BASE.replace("  prod:\n    hosts: [{address: root@p}]\n",
                        f"  prod:\n    hosts: [{{address: root@p}}]\n    policy: {policy}\n")
    path = tmp_path / "ferryman.yml"
    path.write_text(text)
    return load_config(path, {})


class _Src:
    def __init__(self, service: str, ref: str) -> None:
        self.service, self.ref = service, ref


@pytest.mark.parametrize(("ref", "repo"), [
    ("app:main-1a2b", "app"), ("registry:5000/team/app:main", "registry:5000/team/app"),
    ("registry:5000/app", "registry:5000/app"), ("app", "app"),
    ("app:v1@sha256:abcd", "app"),
])
def test_repository(ref: str, repo: str) -> None:
    assert repository(ref) == repo


def test_refs_for_tag() -> None:
    srcs = {"web": _Src("web", "shop:main-1a2b"), "api": _Src("api", "shop:main-1a2b"),
            "db": _Src("db", "postgres:16")}
    ids = {"web": "sha256:1", "api": "sha256:1", "db": "sha256:2"}
    assert refs_for_tag(srcs, ids, "v1.4.2") == {
        "web": "shop:v1.4.2", "api": "shop:v1.4.2", "db": "postgres:v1.4.2"}
    with pytest.raises(BadInput, match="web and api run different images"):
        refs_for_tag(srcs, {**ids, "api": "sha256:3"}, "v1.4.2")
    with pytest.raises(BadInput, match="--tag '-x' is not a Docker tag"):
        refs_for_tag(srcs, ids, "-x")
    with pytest.raises(BadInput, match="by id"):
        refs_for_tag({"web": _Src("web", "sha256:" + "a" * 64)}, {"web": "x"}, "v1")


def test_check_tags_uses_the_given_tag(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '{allowed_tags: ["v*"]}')
    check_tags(cfg, "prod", {"web": "v1.4.2"})
    with pytest.raises(BadInput, match="refused: web: main-1a2b"):
        check_tags(cfg, "prod", {"web": "main-1a2b"})


def _rec(rid: str, to: str, iid: str, when: str, *, kind: str = "release", result: str = "ok",
         mode: str = "run", rolls_back: str | None = None,
         watch: dict[str, Any] | None = None) -> Record:
    return Record.model_validate({
        "id": rid, "kind": kind, "from": "dev", "to": to, "who": "me", "when": when,
        "result": result, "rolls_back": rolls_back, "watch": watch,
        "services": [{"service": "web", "host": "h", "container": "web", "mode": mode,
                      "new": {"ref": "app:x", "id": iid}}]})


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMG = {"web": ("app:main-1a2b", "sha256:" + "1" * 64)}


def test_accepts_from_refuses_naming_the_missing_image(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "{accepts_from: [test]}")
    with pytest.raises(BadInput, match="only from test, not from dev"):
        check_accepts(cfg, "dev", "prod", IMG, History(), NOW)
    with pytest.raises(BadInput) as info:
        check_accepts(cfg, "test", "prod", IMG, History(), NOW)
    assert ("web: app:main-1a2b (111111111111) has no successful release to test in its "
            "history") in str(info.value)
    iid = IMG["web"][1]
    ok = _rec("r1", "test", iid, "2026-12-01T10:00:00+00:00")
    check_accepts(cfg, "test", "prod", IMG, History([ok]), NOW)
    # not: failed, to elsewhere, unchanged, rolled back, failed its watch
    for bad in ([_rec("r1", "test", iid, "2026-12-01T10:00:00+00:00", result="failed")],
                [_rec("r1", "stage", iid, "2026-12-01T10:00:00+00:00")],
                [_rec("r1", "test", iid, "2026-12-01T10:00:00+00:00", mode="unchanged")],
                [ok, _rec("r2", "test", "sha256:0", "2026-12-01T11:00:00+00:00",
                          kind="rollback", rolls_back="r1")],
                [_rec("r1", "test", iid, "2026-12-01T10:00:00+00:00",
                      watch={"result": "failed"})]):
        with pytest.raises(BadInput, match="no successful release"):
            check_accepts(cfg, "test", "prod", IMG, History(bad), NOW)


def test_accepts_from_soak(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "{accepts_from: [test], soak: 30m}")
    iid = IMG["web"][1]
    young = History([_rec("r1", "test", iid, "2026-12-01T11:50:00+00:00")])
    with pytest.raises(BadInput, match="by r1 10m00s ago, less than soak 30m00s"):
        check_accepts(cfg, "test", "prod", IMG, young, NOW)
    old = History([_rec("r1", "test", iid, "2026-12-01T11:29:00+00:00")])
    check_accepts(cfg, "test", "prod", IMG, old, NOW)


# --- values per environment ----------------------------------------------------------------

def test_run_spec_sets_the_environments_values_over_the_carried_ones() -> None:
    from ferryman.docker.runspec import run_spec
    spec = run_spec(FULL, V1, "ferryman-app:v2", name="web",
                    rewrite=lambda v: v.replace("10.0.0.57", "10.9.9.9"),
                    env={"APP_MODE": "prod", "DB_URL": "postgres://prod-db/app", "NEW": "1"})
    env = env_of_argv(spec.create, "ferryman-app:v2")
    assert env["DB_URL"] == "postgres://prod-db/app"  # never the source's value
    assert env["APP_MODE"] == "prod" and env["NEW"] == "1"
    assert env["APP_URL"] == "http://10.9.9.9:8080/"  # carried, rewritten
    assert spec.create.count("-e") == len(env)
    assert not any("DB_URL" in n for n in spec.carried)


def test_hook_run_gets_the_values_too() -> None:
    argv, _ = hook_run(FULL, V1, "img", ["true"], name="n", env={"DB_URL": "prod"})
    assert env_of_argv(argv, "img")["DB_URL"] == "prod"


def test_env_of_argv_stops_at_the_image() -> None:
    argv = ["docker", "create", "-e", "A=1", "--env", "B=x=y", "img", "grep", "-e", "C=3"]
    assert env_of_argv(argv, "img") == {"A": "1", "B": "x=y"}


def test_compose_override_with_values() -> None:
    from ferryman.docker.compose import override
    text = override("api", "app:v2", "3.7", {"DB_URL": 'pg://u:p$1@db/"x"', "MODE": "prod"})
    assert text == ('version: "3.7"\nservices:\n  api:\n    image: "app:v2"\n'
                    '    environment:\n      DB_URL: "pg://u:p$$1@db/\\"x\\""\n'
                    '      MODE: "prod"\n')
    assert override("api", "app:v2", None) == 'services:\n  api:\n    image: "app:v2"\n'


VALUES = """\
project: p
environments:
  test:
    address: 10.0.0.58
    hosts: [{address: root@10.1.1.8}]
  prod:
    address: 10.0.0.57
    env: {SHOP_DB: prod-db, MODE: prod}
    hosts: [{address: root@10.1.1.7}]
services:
  web:
    env:
      prod: {MODE: prod-web}
  api:
"""


def test_values_merge_and_foreign_addresses(tmp_path: Path) -> None:
    path = tmp_path / "ferryman.yml"
    path.write_text(VALUES)
    cfg = load_config(path, {})
    assert cfg.values("prod", "web") == {"SHOP_DB": "prod-db", "MODE": "prod-web"}
    assert cfg.values("prod", "api") == {"SHOP_DB": "prod-db", "MODE": "prod"}
    assert cfg.values("test", "web") == {}
    env = {"UP": "http://10.0.0.58:9380", "SSH": "10.1.1.8", "NEAR": "10.0.0.581",
           "SELF": "http://10.0.0.57/", "SHOP_DB": "10.0.0.58"}
    assert foreign(cfg, "prod", env, {"SHOP_DB": "10.0.0.58"}) == [
        "UP=http://10.0.0.58:9380 names test's address 10.0.0.58",
        "SSH=10.1.1.8 names test's address 10.1.1.8"]
    raw = {"Config": {"Env": ["SHOP_DB=prod-db", "MODE=test"]}}
    assert lacking(raw, cfg.values("prod", "web")) == ["MODE"]


def test_values_errors_name_the_key(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  web:\n    env:\n      staging: {A: b}\n")
    assert any("services.web.env.staging" in i and "an environment name" in i
               for i in found), found
    found = issues(tmp_path, "services:\n  web:\n    env:\n      prod: {1A: b}\n")
    assert any("services.web.env.prod.1A" in i and "variable name" in i for i in found), found


# --- compose durability ----------------------------------------------------------------------

COMPOSE = """\
version: "3.7"
services:
  web:
    image: other:1
  api:
    image: ferryman-app:v1   # the app
    container_name: shop-api
    ports: ["8081:8080"]
"""


def test_image_line_of_the_service_only() -> None:
    assert image_line(COMPOSE, "api") == ImageLine(5, "ferryman-app:v1")
    assert image_line(COMPOSE, "web") == ImageLine(3, "other:1")
    assert image_line(COMPOSE, "db") is None
    assert image_line("x:\n  api:\n    image: a\n", "api") is None  # not under services


def test_durable_edit_rewrites_the_line_keeping_its_comment() -> None:
    edit = durable_edit({"/p/docker-compose.yml": COMPOSE}, "/p/.env", None, "api",
                        "ferryman-app:v2")
    assert isinstance(edit, Edit) and edit.path == "/p/docker-compose.yml"
    assert edit.new == COMPOSE.replace("image: ferryman-app:v1   # the app",
                                       'image: "ferryman-app:v2"  # the app')
    # a later file that sets the image wins
    later = "services:\n  api:\n    image: x:1\n"
    edit = durable_edit({"/p/a.yml": COMPOSE, "/p/b.yml": later, "/p/c.yml": None}, "/p/.env",
                        None, "api", "x:2")
    assert isinstance(edit, Edit) and edit.path == "/p/b.yml"
    assert durable_edit({"/p/a.yml": "services:\n  api:\n    build: .\n"}, "/p/.env", None,
                        "api", "x:2") == "no image: line for api in /p/a.yml"


@pytest.mark.parametrize(("image", "env", "new_env"), [
    ("ferryman-app:${API_TAG}", "X=1\nAPI_TAG=v1\n", "X=1\nAPI_TAG=v2\n"),
    ("ferryman-app:${API_TAG:-v1}", None, "API_TAG=v2\n"),
    ("${APP_IMAGE}", "export APP_IMAGE=ferryman-app:v1\n", "APP_IMAGE=ferryman-app:v2\n"),
    ("${REG}:${API_TAG}", "REG=ferryman-app\n", "REG=ferryman-app\nAPI_TAG=v2\n"),
])
def test_durable_edit_sets_the_variable_in_env(image: str, env: str | None,
                                               new_env: str) -> None:
    text = COMPOSE.replace("ferryman-app:v1   # the app", image)
    edit = durable_edit({"/p/dc.yml": text}, "/p/.env", env, "api", "ferryman-app:v2")
    assert isinstance(edit, Edit)
    assert (edit.path, edit.old, edit.new) == ("/p/.env", env, new_env)


def test_durable_edit_rewrites_the_line_when_no_variable_can_name_it() -> None:
    # REG is unknown: the image cannot be told from a variable; the line is written instead
    text = COMPOSE.replace("ferryman-app:v1   # the app", "${REG}/app:${TAG}")
    edit = durable_edit({"/p/dc.yml": text}, "/p/.env", None, "api", "ferryman-app:v2")
    assert isinstance(edit, Edit) and edit.path == "/p/dc.yml"
    assert 'image: "ferryman-app:v2"' in edit.new
    assert solve_variable("app:${TAG}", {}, "other:v2") is None


def test_history_lines_of_the_lifecycle() -> None:
    from ferryman.cli.release import _lifecycle
    r = Record.model_validate({
        "id": "r1", "kind": "release", "from": "test", "to": "prod", "who": "me", "when": "x",
        "result": "failed", "backup": "b1", "tag": "v1.4.2",
        "hooks": [{"service": "web", "when": "before_switch", "host": "prod-1",
                   "run": ["python", "manage.py", "migrate"], "changes_data": True}],
        "watch": {"window": 20.0, "result": "failed", "after": 4.8,
                  "detail": "container web restarted"},
        "persisted": [{"path": "/opt/shop/.env"}]})
    assert _lifecycle(r) == [
        "before_switch web on prod-1: python manage.py migrate (changes data)",
        "backup before the hooks: b1", "tagged v1.4.2",
        "watch 20s: failed after 4.8s (container web restarted)",
        "/opt/shop/.env made to name the new image"]
    # a record of an older ferryman has none of these
    assert _lifecycle(Record.model_validate({
        "id": "r0", "kind": "release", "from": "test", "to": "prod", "who": "me",
        "when": "x", "result": "ok"})) == []


def test_named_image_is_what_a_plain_compose_up_would_run() -> None:
    from ferryman.docker.composefile import named_image
    base = ("services:\n  api:\n    image: shop:${TAG:-v1}  # the release tag\n"
            "  db:\n    image: pg\n")
    over = "services:\n  api:\n    image: 'shop:${TAG}'\n"
    assert named_image({"a.yml": base}, None, "api") == ("shop:v1", "a.yml")
    assert named_image({"a.yml": base}, "TAG=v7\n", "api") == ("shop:v7", "a.yml")
    # A later file overrides; one that is missing changes nothing.
    assert named_image({"a.yml": base, "b.yml": over, "c.yml": None}, "TAG=v8\n",
                       "api") == ("shop:v8", "b.yml")
    assert named_image({"a.yml": base, "b.yml": over}, None, "api") is None  # TAG unset
    assert named_image({"a.yml": base}, None, "db") == ("pg", "a.yml")
    assert named_image({"a.yml": base}, None, "web") is None
