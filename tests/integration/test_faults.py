"""Faults between ferryman and its hosts, made for real on test hosts: a host that goes silent
mid-command and mid-stream (its SSH traffic dropped by nft inside it), a command past its
deadline, first contact with a known_hosts file that does not exist yet, and a release whose
new container dies at once.

Nothing here times ferryman: a test that hung would be ended by pytest's timeout and fail.
The deadlines in the test config are short (keepalive 1 s x 2, commands 20 s) so that every
case ends well before it.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from labenv import Run, ferryman

from ferryman.config import load_config
from ferryman.hosts import HostPool
from ferryman.lab import build_app_image
from ferryman.lab.demo import CONFIG_FILE, Demo, down, up
from ferryman.transport import TransportError, pipe

pytestmark = pytest.mark.integration

PREFIX = f"ferryman-pytest-flt-{uuid.uuid4().hex[:6]}"
# Drops every packet to and from the host's sshd: the connection stays open and nothing
# gets through either way, as when a bridge or a route goes away under it.
CUT = ("nft add table inet ferryman_cut; "
       "nft add chain inet ferryman_cut input '{ type filter hook input priority -300; }'; "
       "nft add rule inet ferryman_cut input tcp dport 22 drop; "
       "nft add chain inet ferryman_cut output '{ type filter hook output priority -300; }'; "
       "nft add rule inet ferryman_cut output tcp sport 22 drop")
MEND = "nft delete table inet ferryman_cut"
SHORT = """\
  connect_timeout: 5
  command_timeout: {command}
  keepalive_interval: {keepalive}
  keepalive_count_max: 2
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("faults") / "demo"
    made = up(workdir, prefix=PREFIX)
    try:
        yield made
    finally:
        down(workdir, PREFIX)


def config(d: Demo, name: str, *, command: float = 20, keepalive: float = 1,
           ssh: str = "") -> Path:
    """The demo's ferryman.yml with short deadlines (and `ssh` keys replacing known_hosts)."""
    text = d.config.read_text().replace(
        "  connect_timeout: 10\n", SHORT.format(command=command, keepalive=keepalive))
    if ssh:
        head, rest = text.split("ssh:\n", 1)
        rest = rest.split("\n", 1)[1]  # the known_hosts line
        text = f"{head}ssh:\n{ssh}{rest}"
    path = d.config.parent / name
    path.write_text(text)
    return path


def sh(d: Demo, script: str, role: str = "prod", check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


@contextmanager
def mended(d: Demo, role: str = "prod", tools: tuple[str, ...] = ()) -> Iterator[None]:
    """Whatever a test cuts on the host is mended afterwards, wrapper tools removed."""
    try:
        yield
    finally:
        sh(d, MEND, role, check=False)
        for tool in tools:
            sh(d, f"rm -f /usr/local/bin/{tool}", role, check=False)


def wrap(d: Demo, tool: str, real: str) -> None:
    """Puts a `tool` before the real one on PATH that cuts the host's SSH traffic first: the
    network goes away exactly when ferryman reaches that command."""
    script = f"#!/bin/sh\n{CUT}\nexec {real} \"$@\"\n"
    d.lab.exec(d.hosts["prod"], ["sh", "-c", f"cat > /usr/local/bin/{tool} && "
                                 f"chmod 755 /usr/local/bin/{tool}"], input=script.encode())


def running(d: Demo, pattern: str, role: str = "prod") -> list[str]:
    # "[s]leep 1" matches the process, not the shell that runs this pgrep.
    return sh(d, f"pgrep -af '[{pattern[0]}]{pattern[1:]}' || true", role).split("\n")[:-1]


def in_pool(cfg: Path, fn):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        pool = HostPool(load_config(cfg))
        try:
            return await fn(pool)
        finally:
            await pool.close()
    return asyncio.run(go())


# --- a host that goes silent ------------------------------------------------------------------

def test_command_on_a_host_that_goes_silent_ends_naming_host_and_command(demo: Demo) -> None:
    cfg = config(demo, "silent.yml")

    async def go(pool: HostPool) -> tuple[TransportError, str]:
        host = pool.host("prod", "prod-1")
        try:
            await host.run(["sh", "-c", CUT + "; exec sleep 300", "ferryman-cut-test"])
        except TransportError as exc:
            caught = exc
        else:
            raise AssertionError("a command on a silent host returned")
        sh(demo, MEND)
        # The lost connection was dropped: the next command opens a new one.
        again = await host.run(["hostname"], check=True)
        return caught, again.stdout.strip()

    with mended(demo):
        exc, name = in_pool(cfg, go)
    assert exc.host == "prod-1"
    assert "prod-1: connection lost while running ferryman-cut-test" in str(exc)
    assert "not responding to keepalive" in str(exc)
    assert "network" in exc.hint
    assert name == "prod"


def test_deadline_alone_ends_a_command_on_a_silent_host(demo: Demo) -> None:
    # Keepalive off: only the command's deadline and the kill that cannot get through remain.
    cfg = config(demo, "no-keepalive.yml", command=3, keepalive=0)

    async def go(pool: HostPool) -> None:
        await pool.host("prod", "prod-1").run(["sh", "-c", CUT + "; exec sleep 300",
                                              "ferryman-cut-test"])

    with mended(demo), pytest.raises(TransportError) as info:
        in_pool(cfg, go)
    assert info.value.host == "prod-1"
    assert "ferryman-cut-test (no answer for 3s)" in str(info.value)


def test_command_past_its_deadline_is_killed_on_the_host(demo: Demo) -> None:
    cfg = config(demo, "deadline.yml")

    async def go(pool: HostPool):  # type: ignore[no-untyped-def]
        return await pool.host("prod", "prod-1").run(
            ["sh", "-c", "echo started; sleep 301 | cat"], timeout=1)

    res = in_pool(cfg, go)
    assert res.timed_out and not res.ok
    assert res.stdout == "started\n"
    assert "ferryman-pid" not in res.stderr
    # The whole pipeline went, not just the shell that started it.
    assert running(demo, "sleep 301") == []


def test_stream_from_a_host_that_goes_silent(demo: Demo) -> None:
    cfg = config(demo, "stream.yml")

    async def go(pool: HostPool) -> None:
        await pipe(pool.host("prod", "prod-1"),
                   ["sh", "-c", "head -c 1000000 /dev/zero; " + CUT + "; exec sleep 300",
                    "ferryman-cut-test"],
                   pool.host("test", "test-1"),
                   ["sh", "-c", "cat > /dev/null", "ferryman-sink-303"])

    with mended(demo), pytest.raises(TransportError) as info:
        in_pool(cfg, go)
    assert info.value.host == "prod-1"
    assert "connection lost while" in str(info.value)
    # The receiver on the other host was killed, not left waiting for the rest.
    assert running(demo, "ferryman-sink-303", role="test") == []


def test_stream_that_stalls_is_stopped_on_its_idle_deadline(demo: Demo) -> None:
    cfg = config(demo, "stall.yml", command=3)

    async def go(pool: HostPool) -> None:
        await pipe(pool.host("prod", "prod-1"), ["sh", "-c", "exec sleep 302"],
                   pool.host("test", "test-1"), ["sh", "-c", "cat > /dev/null"])

    with pytest.raises(TransportError) as info:
        in_pool(cfg, go)
    assert info.value.host == "prod-1"
    assert "sent nothing for 3s" in str(info.value)
    assert running(demo, "sleep 302") == []


def test_doctor_that_loses_its_host_mid_probe_exits_3(demo: Demo) -> None:
    """The run that once sat idle for minutes: the network goes away while the networks
    check probes from a container's namespace (nsenter is the probe's first command)."""
    cfg = config(demo, "doctor-cut.yml")
    sh(demo, "docker run -d --name shop-db --network shop_default ferryman-app:v1")
    with mended(demo, tools=("nsenter",)):
        try:
            wrap(demo, "nsenter", "/usr/bin/nsenter")
            run = ferryman(cfg, "doctor", "prod", "--check", "firewall", "--check", "networks",
                           "--fix", "--json", timeout=240)
        finally:
            sh(demo, "rm -f /usr/local/bin/nsenter; " + MEND, check=False)
            sh(demo, "docker rm -f shop-db", check=False)
    assert run.code == 3, run.out + run.err
    report = json.loads(run.out)
    assert report["hosts"] == [{"env": "prod", "host": "prod-1", "reachable": False,
                                "status": "FAIL"}]
    (lost,) = report["findings"]
    assert "prod-1: connection lost while running" in lost["summary"]
    assert "during the networks check" in lost["summary"]


# --- first contact ----------------------------------------------------------------------------

def test_first_contact_creates_known_hosts(demo: Demo, tmp_path: Path) -> None:
    known = tmp_path / "fresh" / "ssh" / "known_hosts"
    cfg = config(demo, "first.yml",
                 ssh=f"  known_hosts: {known}\n  accept_unknown_hosts: true\n")
    run = ferryman(cfg, "status", "prod", "--json")
    assert run.code == 0, run.err
    assert "No such file" not in run.err
    assert stat.S_IMODE(os.stat(known).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(known.parent).st_mode) == 0o700
    port = demo.hosts["prod"].port
    (line,) = known.read_text().splitlines()
    assert line.startswith(f"[127.0.0.1]:{port} ssh-")
    # The key is now known: trust on first use is no longer needed.
    strict = config(demo, "strict.yml", ssh=f"  known_hosts: {known}\n")
    assert ferryman(strict, "status", "prod", "--json").code == 0


def test_missing_known_hosts_without_accept_says_so(demo: Demo, tmp_path: Path) -> None:
    known = tmp_path / "none" / "known_hosts"
    cfg = config(demo, "missing.yml", ssh=f"  known_hosts: {known}\n")
    run = ferryman(cfg, "logs", "prod", "web", "--tail", "1")
    assert run.code == 3, run.err
    assert f"known_hosts file {known} does not exist" in run.err
    (hint,) = [ln for ln in run.err.splitlines() if ln.startswith("hint:")]
    assert "accept_unknown_hosts" in hint and "sshd" not in hint
    assert not known.exists()


# --- a release whose new container dies at once -----------------------------------------------

@pytest.mark.parametrize(("tag", "script", "shown"), [
    ("v66", "echo boom >&2; exit 1", "last 40 log lines of web:\nboom"),
    ("v67", "exit 1", "web printed no log lines"),
])
def test_release_of_a_container_that_dies_at_once_shows_its_last_lines(
        demo: Demo, tag: str, script: str, shown: str) -> None:
    # TEST runs the image with a command of its own; PROD's web takes the image's CMD, which
    # dies at once.
    dying = build_app_image(tag, f"app {tag}", cmd=json.dumps(["sh", "-c", script]))
    demo.lab.load_image(demo.hosts["test"], dying)
    restore = ("docker rm -f web && docker run -d --name web -p 8080:8080 --init "
               "--restart unless-stopped -e APP_MODE=web "
               f"-v {CONFIG_FILE}:/www/config.json:ro ferryman-app:v2")
    sh(demo, "docker rm -f web && docker run -d --name web -p 8080:8080 "
       f"{dying} httpd -f -p 8080 -h /www", role="test")
    try:
        run = ferryman(config(demo, f"dying-{tag}.yml"), "release", "test", "prod",
                       "--service", "web", "--yes", timeout=240)
    finally:
        sh(demo, restore, role="test")
    assert run.code == 1, run.err
    failure = run.err.split("FAILED step 5/6 health of web on prod-1", 1)[1]
    assert shown in failure
    assert "ferryman logs prod web --tail 200" in failure and "logs ENV" not in run.err
    # Undone: the old container serves again.
    assert sh(demo, "docker inspect -f '{{.State.Running}}' web").strip() == "true"


# --- a flow that loses its host (last: PROD is left half-released) ----------------------------

def test_release_that_loses_its_host_exits_3_naming_host_and_step(demo: Demo) -> None:
    cfg = config(demo, "release-cut.yml")
    with mended(demo, tools=("curl",)):
        # The health gate's first HTTP probe cuts the network.
        wrap(demo, "curl", "/usr/bin/curl")
        run: Run = ferryman(cfg, "release", "test", "prod", "--service", "web", "--yes",
                            timeout=240)
    assert run.code == 3, run.err
    assert "FAILED step" in run.err and "health of web on prod-1" in run.err
    assert "prod-1: connection lost while running" in run.err
