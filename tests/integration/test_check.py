"""`ferryman check` and SSH host-key handling against real hosts."""

from __future__ import annotations

from labenv import Env, ferryman


def test_check_reports_docker_compose_disk(env: Env) -> None:
    run = ferryman(env.config(), "check", "--json")
    assert run.code == 0, run.err
    rows = {r["host"]: r for r in run.json()}
    engine = env.lab.exec(env.test, ["docker", "version", "--format",
                                     "{{.Server.Version}}"]).stdout.decode().strip()
    for label in ("test-1", "prod-1"):
        row = rows[label]
        assert row["ok"] is True
        assert row["ssh_ok"] is True
        assert row["docker_version"] == engine
        assert row["compose"] == "docker-compose 1.29.2"  # v2 plugin is not packaged there
        assert row["docker_root"] == "/var/lib/docker"
        assert 0 < row["disk_free"] <= row["disk_total"]


def test_check_human_table(env: Env) -> None:
    run = ferryman(env.config(), "check", "prod")
    assert run.code == 0, run.err
    assert "prod-1" in run.out and "test-1" not in run.out
    assert "docker-compose 1.29.2" in run.out


def test_check_unreachable_names_host(env: Env) -> None:
    run = ferryman(env.config("closed.yml", test_port="1"), "check", "test", "--json")
    assert run.code == 3
    row = run.json()[0]
    assert row["ssh_ok"] is False
    assert "test-1" in row["error"] and "127.0.0.1:1" in row["error"]


def test_unknown_host_key_is_refused_by_default(env: Env) -> None:
    empty = env.workdir / "empty_known_hosts"
    empty.write_text("")
    run = ferryman(env.config("strict.yml", known_hosts=str(empty)), "check", "test", "--json")
    assert run.code == 3
    assert "not in" in run.json()[0]["error"]
    assert empty.read_text() == ""


def test_unknown_host_key_recorded_when_allowed(env: Env) -> None:
    learn = env.workdir / "learn_known_hosts"
    learn.write_text("")
    cfg = env.config("learn.yml", known_hosts=str(learn))
    cfg.write_text(cfg.read_text().replace("connect_timeout: 5",
                                           "connect_timeout: 5\n  accept_unknown_hosts: true"))
    run = ferryman(cfg, "check", "test", "--json")
    assert run.code == 0, run.out + run.err
    recorded = learn.read_text()
    pattern, kind, blob = recorded.split()
    assert pattern == f"[127.0.0.1]:{env.test.port}"
    host_keys = env.lab.sh(env.test, "cat /etc/ssh/ssh_host_*_key.pub")
    assert f"{kind} {blob}" in host_keys
    # Known now: a second run verifies against the recorded key.
    assert ferryman(cfg, "check", "test").code == 0
    assert learn.read_text() == recorded


def test_changed_host_key_is_refused_even_when_learning(env: Env) -> None:
    wrong = env.workdir / "wrong_known_hosts"
    prod_key = (env.lab.known_hosts.read_text().splitlines())
    prod_line = next(ln for ln in prod_key if f":{env.prod.port} " in ln)
    # The test host's address with PROD's key: as if the server had been replaced.
    wrong.write_text(prod_line.replace(f":{env.prod.port} ", f":{env.test.port} ") + "\n")
    cfg = env.config("wrong.yml", known_hosts=str(wrong))
    cfg.write_text(cfg.read_text().replace("connect_timeout: 5",
                                           "connect_timeout: 5\n  accept_unknown_hosts: true"))
    run = ferryman(cfg, "check", "test", "--json")
    assert run.code == 3
    assert "CHANGED" in run.json()[0]["error"]


def test_jump_host_reaches_a_host_behind_it(env: Env) -> None:
    # PROD by its container address, reachable only through TEST as the jump host.
    prod_ip = env.lab.ip_address(env.prod)
    key = env.lab.sh(env.prod, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    known = env.workdir / "jump_known_hosts"
    known.write_text(env.lab.known_hosts.read_text() + f"{prod_ip} {key[0]} {key[1]}\n")
    cfg = env.config("jump.yml", known_hosts=str(known))
    text = cfg.read_text().replace(
        f"address: root@127.0.0.1:{env.prod.port}",
        f"address: root@{prod_ip}:22\n        jump: root@127.0.0.1:{env.test.port}",
    )
    cfg.write_text(text)
    run = ferryman(cfg, "check", "prod", "--json")
    assert run.code == 0, run.out + run.err
    assert run.json()[0]["docker_version"]
    status = ferryman(cfg, "status", "prod", "--json")
    assert status.code == 0, status.err
    web = next(s for s in status.json()["services"] if s["service"] == "web")
    assert web["image_id"] == env.host_image_id(env.prod, "web")
