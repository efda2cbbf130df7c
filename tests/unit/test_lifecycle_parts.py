"""The release lifecycle's pure parts: the hook's one-off `docker run`, and the config keys
(hooks, accepts_from, soak, watch) with errors that name the key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ferryman.config import ConfigError, load_config
from ferryman.docker.hooks import hook_name, hook_run, remove_hook, wrapped

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
