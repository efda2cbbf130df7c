"""`ferryman status` against real hosts: run mode, compose mode, missing compose file, drift."""

from __future__ import annotations

from labenv import Env, ferryman


def _by(services: list[dict], env: str, service: str) -> dict:
    return next(s for s in services if s["env"] == env and s["service"] == service)


def test_status_json_modes_and_drift(env: Env) -> None:
    run = ferryman(env.config(), "status", "test", "prod", "--json")
    assert run.code == 0, run.err
    data = run.json()
    services = data["services"]

    web_test = _by(services, "test", "web")
    assert web_test["mode"] == "run"
    assert web_test["state"] == "running"
    assert web_test["image"] == env.images["v2"]
    assert web_test["image_id"] == env.host_image_id(env.test, "web")
    assert "compose" not in web_test

    api_prod = _by(services, "prod", "api")
    assert api_prod["mode"] == "compose"
    assert api_prod["image"] == env.images["v1"]
    assert api_prod["compose"]["project"] == "shop"
    assert api_prod["compose"]["working_dir"] == "/opt/shop"
    assert api_prod["compose"]["config_files"] == [
        {"path": "/opt/shop/docker-compose.yml", "exists": True}
    ]
    # Its own file names the image that runs: a plain compose up would keep it.
    assert api_prod["compose"]["files_name"] == env.images["v1"]
    assert api_prod["compose"]["files_disagree"] is False
    assert api_prod["health"] in ("starting", "healthy")

    legacy_prod = _by(services, "prod", "legacy")
    assert legacy_prod["mode"] == "compose"
    assert legacy_prod["compose"]["config_files"] == [
        {"path": "/opt/legacy/docker-compose.yml", "exists": False}
    ]
    assert _by(services, "test", "legacy")["state"] == "absent"

    drift = {d["service"]: d for d in data["drift"]}
    assert drift["web"]["differs"] is True
    assert drift["api"]["differs"] is True
    assert drift["legacy"]["differs"] is True  # present on one side only
    assert any(env.images["v2"] in i for i in drift["web"]["images"]["test"])
    assert any(env.images["v1"] in i for i in drift["web"]["images"]["prod"])


def test_status_no_drift_when_same_image(env: Env) -> None:
    # Both hosts hold v1 and v2: run v2 in a throwaway service on both, same image id.
    for host in (env.test, env.prod):
        env.lab.exec(host, ["docker", "run", "-d", "--name", "same", env.images["v2"]])
    try:
        extra = "  same: {}\n"
        run = ferryman(env.config("same.yml", extra=extra), "status", "--json")
        assert run.code == 0, run.err
        drift = {d["service"]: d for d in run.json()["drift"]}
        assert drift["same"]["differs"] is False
    finally:
        for host in (env.test, env.prod):
            env.lab.exec(host, ["docker", "rm", "-f", "same"])


def test_status_table_shows_modes_and_drift(env: Env) -> None:
    run = ferryman(env.config(), "status", "test", "prod")
    assert run.code == 0, run.err
    out = run.out
    assert "compose shop/api" in out
    assert "/opt/legacy/docker-compose.yml (missing)" in out
    assert "DIFFERS" in out
    assert "absent" in out
    assert "prod-1" in out and "test-1" in out


def test_status_unknown_environment_is_bad_input(env: Env) -> None:
    run = ferryman(env.config(), "status", "staging")
    assert run.code == 2
    assert "unknown environment 'staging'" in run.err
    assert "test, prod" in run.err


def test_status_unreachable_host_exit_3(env: Env) -> None:
    run = ferryman(env.config("down.yml", prod_port="1"), "status", "--json")
    assert run.code == 3
    services = run.json()["services"]
    assert _by(services, "prod", "web")["state"] == "unreachable"
    assert "127.0.0.1:1" in _by(services, "prod", "web")["error"]
    assert _by(services, "test", "web")["state"] == "running"
