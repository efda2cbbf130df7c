"""argv builders: values are arguments, never shell text; parsers of their output."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def _tools_dir(tmp_path: Path, *tools: str) -> str:
    """A PATH with sh and exactly the named tools: which client the probe finds is chosen."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", *tools):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed here")
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.fixture()
def refused_url() -> Iterator[str]:
    # Bound but not listening: the kernel answers a connect with a reset (refused), and no
    # other process can take the port while the socket is held.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/x"


# The client's own code for "could not connect": curl 7 (CURLE_COULDNT_CONNECT), GNU wget 4
# (network failure). Not any non-zero exit: a missing client or a bad option must not pass.
@pytest.mark.parametrize(("client", "connect_failed"), [("curl", 7), ("wget", 4)])
def test_http_probe_refused_port_fails(tmp_path, monkeypatch, refused_url, client,
                                       connect_failed) -> None:
    monkeypatch.setenv("PATH", _tools_dir(tmp_path, client))
    res = asyncio.run(LocalHost().run(dc.http_probe(refused_url, 1)))
    assert res.exit_status == connect_failed, (res.exit_status, res.stderr)


def test_http_probe_without_a_client_says_so(tmp_path, monkeypatch, refused_url) -> None:
    monkeypatch.setenv("PATH", _tools_dir(tmp_path))
    res = asyncio.run(LocalHost().run(dc.http_probe(refused_url, 1)))
    assert res.exit_status == 127
    assert "neither curl nor wget" in res.stderr


def test_parse_df() -> None:
    out = ("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
           "/dev/vda        263174212  23000000 83886080      22% /\n")
    assert dc.parse_df(out) == (263174212 * 1024, 83886080 * 1024)
    assert dc.parse_df("") is None
    assert dc.parse_df("head\nbroken line") is None


def test_container_builders_exact_argv() -> None:
    assert dc.container_image_id("web") == ["docker", "inspect", "--format", "{{.Image}}", "web"]
    assert dc.restart_container("web", None) == ["docker", "restart", "web"]
    assert dc.stop_container("a b") == ["docker", "stop", "a b"]
    assert dc.start_container("web") == ["docker", "start", "web"]
    assert dc.rename_container("web", "web.old") == ["docker", "rename", "web", "web.old"]
    assert dc.remove_container("web") == ["docker", "rm", "web"]
    assert dc.remove_container("abc", force=True) == ["docker", "rm", "-f", "abc"]
    assert dc.set_restart_policy("web", "on-failure:3") == [
        "docker", "update", "--restart", "on-failure:3", "web"]
    assert dc.all_containers() == ["docker", "ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]
    assert dc.all_container_images() == ["docker", "ps", "-a", "--format",
                                         "{{.Names}}\t{{.Image}}"]


def test_engine_image_volume_network_builders_exact_argv() -> None:
    assert dc.docker_version() == ["docker", "version", "--format", "{{json .}}"]
    assert dc.docker_info() == ["docker", "info", "--format", "{{json .}}"]
    assert dc.docker_root_dir() == ["docker", "info", "--format", "{{.DockerRootDir}}"]
    assert dc.remove_image("sha256:ab") == ["docker", "rmi", "sha256:ab"]
    assert dc.image_facts(["sha256:ab"]) == [
        "docker", "image", "inspect", "--format", "{{.Id}} {{.Os}}/{{.Architecture}} {{.Size}}",
        "sha256:ab"]
    assert dc.create_volume("db data") == ["docker", "volume", "create", "db data"]
    assert dc.volume_mountpoints(["a", "b"]) == [
        "docker", "volume", "inspect", "--format", "{{.Name}} {{.Mountpoint}}", "a", "b"]
    assert dc.network_names() == ["docker", "network", "ls", "--format", "{{.Name}}"]
    assert dc.inspect_networks(["n1", "n2"]) == ["docker", "network", "inspect", "n1", "n2"]


def test_exec_in_exact_argv() -> None:
    assert dc.exec_in("db", ["pg_dump", "shop"]) == ["docker", "exec", "db", "pg_dump", "shop"]
    assert dc.exec_in("db", ["pg_restore"], user="postgres", interactive=True) == [
        "docker", "exec", "-i", "-u", "postgres", "db", "pg_restore"]
