"""`ferryman restart` and `ferryman logs` against real hosts, with the step log on disk."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from typing import IO

from labenv import Env, ferryman


def _logs(env: Env, suffix: str) -> list:
    return sorted((env.workdir / "logs").glob(f"*-restart-*.{suffix}"))


def test_restart_waits_for_health_and_logs_steps(env: Env) -> None:
    before = env.started_at(env.test, "web")
    known = set(_logs(env, "jsonl"))
    run = ferryman(env.config(), "restart", "test", "web")
    assert run.code == 0, run.err
    assert env.started_at(env.test, "web") != before
    assert "step 2/3 restart web on test-1" in run.err
    assert "step 3/3 health of web on test-1" in run.err

    new = [p for p in _logs(env, "jsonl") if p not in known]
    assert len(new) == 1
    events = [json.loads(line) for line in new[0].read_text().splitlines()]
    kinds = [e["event"] for e in events]
    # Planning reads the hosts first; those reads are logged too.
    assert set(kinds[: kinds.index("flow_start")]) <= {"command"}
    # After the flow ends, only its bookkeeping: the journal removed, the lock given back.
    end = kinds.index("flow_end")
    assert set(kinds[end + 1:]) <= {"command"} and events[end]["ok"] is True
    starts = [e for e in events if e["event"] == "step_start"]
    assert [(e["n"], e["m"]) for e in starts] == [(1, 3), (2, 3), (3, 3)]
    assert starts[1]["params"] == {"env": "test", "host": "test-1", "service": "web",
                                   "container": "web"}
    commands = [e["command"] for e in events if e["event"] == "command"]
    assert "docker restart --time 10 web" in commands
    text = new[0].with_suffix(".log").read_text()
    assert "[restart] step 2/3 restart web on test-1" in text


def test_restart_compose_service_uses_docker_health(env: Env) -> None:
    run = ferryman(env.config(), "restart", "test", "api")
    assert run.code == 0, run.err
    assert "docker health: healthy" in run.err


def test_restart_failing_health_exit_1_with_evidence(env: Env) -> None:
    env.lab.exec(env.prod, ["docker", "run", "-d", "--name", "noisy", env.images["v1"], "sh",
                            "-c", "echo noisy started; exec httpd -f -p 8080 -h /www"])
    extra = """\
  broken:
    container: noisy
    health:
      http: http://127.0.0.1:9/health?token=${SHOP_TOKEN}
      retries: 2
      interval: 200ms
      timeout: 1s
"""
    cfg = env.config("broken.yml", extra=extra)
    try:
        run = ferryman(cfg, "restart", "prod", "broken", "--yes",
                       env_vars={"SHOP_TOKEN": "s3cr3t-value"})
    finally:
        env.lab.exec(env.prod, ["docker", "rm", "-f", "noisy"])
    assert run.code == 1, run.err
    assert "FAILED step 3/3 health of broken on prod-1" in run.err
    assert "noisy started" in run.err  # the container's last log lines are the evidence
    logs = sorted((env.workdir / "logs").glob("*-restart-*"))
    assert logs
    for path in logs:
        assert "s3cr3t-value" not in path.read_text()
    assert "s3cr3t-value" not in run.err


def test_restart_prod_asks_for_confirmation(env: Env) -> None:
    before = env.started_at(env.prod, "web")
    run = ferryman(env.config(), "restart", "prod", "web")
    assert run.code == 2
    assert "confirmation" in run.err and "--yes" in run.err
    assert env.started_at(env.prod, "web") == before


def test_restart_dry_run_changes_nothing(env: Env) -> None:
    before = env.started_at(env.test, "web")
    run = ferryman(env.config(), "restart", "test", "web", "--dry-run")
    assert run.code == 0, run.err
    assert "docker restart --time 10 web" in run.err
    assert "nothing was changed" in run.err
    assert env.started_at(env.test, "web") == before


def test_restart_missing_container_exit_3(env: Env) -> None:
    run = ferryman(env.config(), "restart", "test", "legacy")
    assert run.code == 3
    assert "legacy-worker on test-1" in run.err


def test_restart_unknown_service_exit_2(env: Env) -> None:
    run = ferryman(env.config(), "restart", "test", "nope")
    assert run.code == 2
    assert "unknown service nope" in run.err


def test_logs_tail_includes_stderr(env: Env) -> None:
    run = ferryman(env.config(), "logs", "prod", "legacy", "--tail", "5")
    assert run.code == 0, run.err
    assert "worker started" in run.out
    assert "worker warning" in run.err


def test_logs_missing_container_exit_3(env: Env) -> None:
    run = ferryman(env.config(), "logs", "test", "legacy")
    assert run.code == 3
    assert "legacy-worker" in run.err


def _lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """Lines of a stream, read in a thread, so a waiting test can give up at its deadline
    (a readline in the test itself would block past any deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)  # end of stream

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_logs_follow_streams_new_lines(env: Env) -> None:
    env.lab.exec(env.test, ["docker", "run", "-d", "--name", "ticker", env.images["v1"], "sh",
                            "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"])
    cfg = env.config("follow.yml", extra="  ticker: {}\n")
    proc = subprocess.Popen([sys.executable, "-m", "ferryman", "-c", str(cfg), "logs", "test",
                             "ticker", "--tail", "1", "--follow"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        lines = _lines_of(proc.stdout)
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while len(seen) < 5:
            left = deadline - time.monotonic()
            assert left > 0, f"only {seen} within 30 s"
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"the stream ended after {seen} (exit {proc.poll()})"
            seen.append(line.strip())
        numbers = [int(line.split()[1]) for line in seen]
        # One line of history, then new lines as the container prints them.
        assert numbers == list(range(numbers[0], numbers[0] + 5))
    finally:
        proc.kill()
        proc.wait(10)
        env.lab.exec(env.test, ["docker", "rm", "-f", "ticker"])
