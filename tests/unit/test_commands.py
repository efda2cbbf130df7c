"""argv builders: values are arguments, never shell text; parsers of their output."""

from __future__ import annotations

import asyncio

from ferryman.docker import commands as dc
from ferryman.transport import LocalHost


def test_builders_are_plain_argv() -> None:
    assert dc.inspect_containers(["a", "b"]) == ["docker", "inspect", "--type", "container",
                                                 "a", "b"]
    assert dc.container_logs("web", tail=5, follow=True) == [
        "docker", "logs", "--tail", "5", "--follow", "web"]
    assert dc.restart_container("web", 3) == ["docker", "restart", "--time", "3", "web"]
    assert dc.disk_free("/var/lib/docker") == ["df", "-Pk", "--", "/var/lib/docker"]


def test_files_exist_with_odd_names(tmp_path) -> None:
    odd = tmp_path / "a b;$(touch pwned)"
    odd.write_text("x")
    argv = dc.files_exist([str(odd), str(tmp_path / "missing")])
    res = asyncio.run(LocalHost().run(argv, check=True))
    assert dc.parse_files_exist(res.stdout) == {str(odd): True,
                                                str(tmp_path / "missing"): False}
    assert not (tmp_path / "pwned").exists()


def test_http_probe_refused_port_fails() -> None:
    res = asyncio.run(LocalHost().run(dc.http_probe("http://127.0.0.1:9/x", 1)))
    assert res.exit_status != 0


def test_parse_df() -> None:
    out = ("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
           "/dev/vda        263174212  23000000 83886080      22% /\n")
    assert dc.parse_df(out) == (263174212 * 1024, 83886080 * 1024)
    assert dc.parse_df("") is None
    assert dc.parse_df("head\nbroken line") is None
