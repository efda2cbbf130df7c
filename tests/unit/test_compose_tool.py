"""Which compose a host has, read from the answers of both version commands."""

from __future__ import annotations

from ferryman.docker import compose


def test_version_builders_exact_argv() -> None:
    assert compose.v2_version() == ["docker", "compose", "version", "--short"]
    assert compose.v1_version() == ["docker-compose", "version", "--short"]


def test_plugin_wins_when_both_answer() -> None:
    # As answered on a trixie host: the plugin 2.26.1 and no docker-compose binary.
    tool = compose.read_tool(True, "2.26.1\n", False, "")
    assert tool == compose.ComposeTool("v2", "2.26.1")
    assert tool.label == "docker compose 2.26.1"
    assert compose.read_tool(True, "2.26.1\n", True, "1.29.2\n").flavour == "v2"


def test_v1_when_only_docker_compose_answers() -> None:
    # bookworm: `docker compose` is an unknown command (exit 1, usage on stdout/stderr).
    tool = compose.read_tool(False, "", True, "1.29.2\n")
    assert tool == compose.ComposeTool("v1", "1.29.2")
    assert tool.label == "docker-compose 1.29.2"


def test_neither_or_an_empty_answer_is_none() -> None:
    assert compose.read_tool(False, "", False, "") is None
    assert compose.read_tool(True, "  \n", True, "") is None
