"""The SSH transport against real sshd: argv quoting, exit codes, timeouts, reuse, pipes."""

from __future__ import annotations

import asyncio
import hashlib

from labenv import Env

from ferryman.config import load_config
from ferryman.hosts import HostPool
from ferryman.transport import TransportError, pipe


def _pool(env: Env) -> HostPool:
    return HostPool(load_config(env.config()))


def test_run_returns_status_and_both_streams(env: Env) -> None:
    async def go() -> None:
        pool = _pool(env)
        try:
            host = pool.host("test", "test-1")
            r = await host.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
            assert (r.exit_status, r.stdout, r.stderr) == (7, "out\n", "err\n")
            assert not r.ok
        finally:
            await pool.close()

    asyncio.run(go())


def test_arguments_reach_the_host_unchanged(env: Env) -> None:
    odd = ["a b", "$(touch /tmp/pwned)", "`id`", "it's", 'q"uote', "semi;colon", "*", "\\n"]

    async def go() -> list[str]:
        pool = _pool(env)
        try:
            r = await pool.host("test", "test-1").run(["printf", "%s\\n", *odd], check=True)
            return r.stdout.splitlines()
        finally:
            await pool.close()

    assert asyncio.run(go()) == odd
    assert env.lab.exec(env.test, ["test", "-e", "/tmp/pwned"], check=False).returncode == 1


def test_timeout_is_reported(env: Env) -> None:
    async def go() -> None:
        pool = _pool(env)
        try:
            r = await pool.host("test", "test-1").run(["sleep", "5"], timeout=0.5)
            assert r.timed_out and not r.ok
        finally:
            await pool.close()

    asyncio.run(go())


def test_one_connection_serves_many_commands(env: Env) -> None:
    async def go() -> str:
        pool = _pool(env)
        try:
            host = pool.host("prod", "prod-1")
            results = await asyncio.gather(*(host.run(["true"]) for _ in range(30)))
            assert all(r.ok for r in results)
            # Count the established SSH connections as sshd sees them, from inside the host.
            ss = await host.run(["ss", "-Htn", "state", "established", "( sport = :22 )"])
            return ss.stdout
        finally:
            await pool.close()

    established = [ln for ln in asyncio.run(go()).splitlines() if ln.strip()]
    assert len(established) == 1


# A rendezvous: each host's command says it has started (a write to a fifo, which blocks
# until the test reads it) and then waits for the test's go. The test gives the go only once
# both have started, so the commands finish only if they were running at the same time; a
# pool that runs hosts one after the other times out on the first host.
_RENDEZVOUS = ('date +%s%N; echo started > "$1/started"; read go < "$1/go"; date +%s%N')


def test_hosts_are_reached_concurrently(env: Env) -> None:
    roles = [env.test, env.prod]
    folder = "/tmp/ferryman-rendezvous"
    for h in roles:
        env.lab.exec(h, ["sh", "-c", f"rm -rf {folder} && mkdir {folder} && "
                                     f"mkfifo {folder}/started {folder}/go"])

    def conduct() -> list[str]:
        heard = [env.lab.exec(h, ["timeout", "30", "cat", f"{folder}/started"],
                              check=False).stdout.decode().strip() for h in roles]
        if heard == ["started", "started"]:
            for h in roles:
                env.lab.exec(h, ["timeout", "30", "sh", "-c", f"echo go > {folder}/go"],
                             check=False)
        return heard

    async def go() -> tuple[list[str], list]:
        pool = _pool(env)
        try:
            hosts = [pool.host("test", "test-1"), pool.host("prod", "prod-1")]
            argv = ["timeout", "30", "sh", "-c", _RENDEZVOUS, "rendezvous", folder]
            heard, *results = await asyncio.gather(
                asyncio.to_thread(conduct), *(h.run(argv, timeout=40) for h in hosts))
            return heard, results
        finally:
            await pool.close()

    heard, results = asyncio.run(go())
    assert heard == ["started", "started"]
    assert all(r.ok for r in results), [(r.exit_status, r.stderr) for r in results]
    # Both hosts share this machine's clock: each command's span covers the other's start.
    spans = [tuple(int(t) for t in r.stdout.split()) for r in results]
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_pipe_streams_bytes_between_hosts(env: Env) -> None:
    env.lab.exec(env.test, ["sh", "-c", "head -c 20000000 /dev/urandom > /tmp/blob"])
    want = env.lab.exec(env.test, ["sha256sum", "/tmp/blob"]).stdout.decode().split()[0]
    seen: list[int] = []

    async def go() -> tuple[int, str]:
        pool = _pool(env)
        try:
            res = await pipe(pool.host("test", "test-1"), ["cat", "/tmp/blob"],
                             pool.host("prod", "prod-1"), ["sh", "-c", "tee /tmp/blob | sha256sum"],
                             on_progress=seen.append)
            assert res.ok, (res.source, res.sink)
            return res.bytes, res.sink.stdout.split()[0]
        finally:
            await pool.close()

    sent, got = asyncio.run(go())
    assert sent == 20_000_000
    assert got == want
    assert seen[-1] == 20_000_000 and len(seen) > 10


def test_pipe_source_failure_is_not_a_complete_stream(env: Env) -> None:
    async def go() -> None:
        pool = _pool(env)
        try:
            res = await pipe(pool.host("test", "test-1"),
                             ["sh", "-c", "head -c 1000000 /dev/zero; echo boom >&2; exit 3"],
                             pool.host("prod", "prod-1"),
                             ["sh", "-c", "cat > /tmp/partial && touch /tmp/complete"])
            assert not res.ok
            assert res.source.exit_status == 3 and "boom" in res.source.stderr
        finally:
            await pool.close()

    env.lab.exec(env.prod, ["rm", "-f", "/tmp/complete"])
    asyncio.run(go())
    # The receiver saw its input cut, not a clean end: it never reached its success branch.
    assert env.lab.exec(env.prod, ["test", "-e", "/tmp/complete"], check=False).returncode == 1


def test_pipe_into_unreachable_host_raises(env: Env) -> None:
    async def go() -> None:
        pool = HostPool(load_config(env.config("pipe-down.yml", prod_port="1")))
        try:
            await pipe(pool.host("test", "test-1"), ["echo", "x"],
                       pool.host("prod", "prod-1"), ["cat"])
        finally:
            await pool.close()

    try:
        asyncio.run(go())
    except TransportError as exc:
        assert "prod-1" in str(exc)
    else:
        raise AssertionError("pipe into a closed port did not fail")


def test_hash_helper_matches(env: Env) -> None:
    # Guards the test above: sha256sum on the host agrees with Python's.
    data = b"ferryman"
    out = env.lab.exec(env.test, ["sha256sum"], input=data).stdout.decode().split()[0]
    assert out == hashlib.sha256(data).hexdigest()
