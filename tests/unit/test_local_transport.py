"""The local transport and the pipe, on this machine's own processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess

import pytest

from ferryman.transport import LocalHost, Result, TransportError, pipe


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


def _alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


def test_deadline_kills_the_whole_command() -> None:
    # The pipeline's `cat` holds stdout open: killing the shell alone would leave the
    # wait for output hanging.
    marker = f"sleep 3{os.getpid() % 1000:03d}"

    async def go() -> Result:
        return await LocalHost().run(["sh", "-c", f"echo started; {marker} | cat"], timeout=0.5)

    res = asyncio.run(go())
    assert res.timed_out and res.stdout == "started\n"
    assert not _alive(marker)


def test_stream_idle_deadline_stops_a_silent_command() -> None:
    marker = f"sleep 4{os.getpid() % 1000:03d}"

    async def go() -> None:
        proc = await LocalHost().open(["sh", "-c", f"{marker}"], idle_timeout=0.5)
        await proc.read(1024)

    with pytest.raises(TransportError) as info:
        asyncio.run(go())
    assert "sent nothing for 0.5s" in str(info.value)
    assert not _alive(marker)
