"""Parsing `docker inspect` output captured from a real engine (docker 20.10, compose 1.29)."""

from __future__ import annotations

import json
from pathlib import Path

from ferryman.docker.inspect import ComposeInfo, parse_containers, short_id

DATA = Path(__file__).parent / "data"


def test_run_and_compose_containers() -> None:
    facts = parse_containers((DATA / "inspect_run_and_compose.json").read_text())
    assert set(facts) == {"web", "demo_api_1"}
    web = facts["web"]
    assert web.mode == "run" and web.compose is None
    assert web.running and web.status == "running"
    assert web.image_ref == "ferryman-app:v1" and web.image_tag == "v1"
    assert web.image_id.startswith("sha256:")
    assert web.health is None
    api = facts["demo_api_1"]
    assert api.mode == "compose"
    assert api.compose == ComposeInfo(
        project="demo", service="api", working_dir="/opt/demo",
        config_files=["/opt/demo/docker-compose.yml"], version="1.29.2",
    )
    assert api.health == "healthy"


def test_stopped_container() -> None:
    facts = parse_containers((DATA / "inspect_stopped.json").read_text())["web"]
    assert facts.status == "exited" and not facts.running
    assert facts.finished_at > facts.started_at


def test_missing_containers_leave_others() -> None:
    assert parse_containers("") == {}
    assert parse_containers("[]\n") == {}


def test_garbage_is_an_error() -> None:
    try:
        parse_containers("Error: permission denied")
    except ValueError as exc:
        assert "not JSON" in str(exc)
    else:
        raise AssertionError("garbage accepted")


def test_compose_v2_absolute_files_and_incomplete_labels() -> None:
    v2 = ComposeInfo.from_labels({
        "com.docker.compose.project": "rag",
        "com.docker.compose.service": "es01",
        "com.docker.compose.project.working_dir": "/opt/rag",
        "com.docker.compose.project.config_files": "/opt/rag/a.yml,/opt/rag/b.yml",
    })
    assert v2 is not None and v2.config_files == ["/opt/rag/a.yml", "/opt/rag/b.yml"]
    assert v2.complete
    # Portainer-style: a project label without files or working dir (source note 000).
    bare = ComposeInfo.from_labels({"com.docker.compose.project": "x"})
    assert bare is not None and not bare.complete
    assert ComposeInfo.from_labels({}) is None


def test_image_tag_forms() -> None:
    raw = json.loads((DATA / "inspect_run_and_compose.json").read_text())[0]
    from ferryman.docker.inspect import ContainerFacts

    for ref, tag in [("app", "latest"), ("reg:5000/team/app:v2.1", "v2.1"),
                     ("reg:5000/app", "latest"), ("app@sha256:abc", "latest")]:
        raw["Config"]["Image"] = ref
        assert ContainerFacts.from_inspect(raw).image_tag == tag
    assert short_id("sha256:0123456789abcdef") == "0123456789ab"
