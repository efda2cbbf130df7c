"""The local transport and the pipe, on this machine's own processes."""

from __future__ import annotations

import asyncio
import hashlib

from ferryman.transport import LocalHost, pipe


def test_run_status_streams_timeout() -> None:
    host = LocalHost()
    r = asyncio.run(host.run(["sh", "-c", "echo o; echo e >&2; exit 4"]))
    assert (r.exit_status, r.stdout, r.stderr, r.ok) == (4, "o\n", "e\n", False)
    assert asyncio.run(host.run(["sleep", "3"], timeout=0.2)).timed_out
    assert asyncio.run(host.run(["no-such-binary-here"])).exit_status == 127


def test_pipe_counts_and_delivers_bytes(tmp_path) -> None:
    blob = bytes(range(256)) * 40000
    src = tmp_path / "blob"
    src.write_bytes(blob)
    seen: list[int] = []
    res = asyncio.run(pipe(LocalHost("a"), ["cat", str(src)], LocalHost("b"), ["sha256sum"],
                           on_progress=seen.append))
    assert res.ok and res.bytes == len(blob)
    assert res.sink.stdout.split()[0] == hashlib.sha256(blob).hexdigest()
    assert seen[-1] == len(blob)


def test_pipe_source_failure_kills_sink(tmp_path) -> None:
    done = tmp_path / "complete"
    res = asyncio.run(pipe(
        LocalHost("a"), ["sh", "-c", "head -c 100000 /dev/zero; exit 2"],
        LocalHost("b"), ["sh", "-c", f"cat >/dev/null && touch {done}"],
    ))
    assert not res.ok and res.source.exit_status == 2
    assert not done.exists()
