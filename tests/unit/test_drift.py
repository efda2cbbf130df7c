from __future__ import annotations

from pathlib import Path

from ferryman.docker.inspect import parse_containers
from ferryman.flows.status import ServiceStatus, drift
from ferryman.hosts import Placement

DATA = Path(__file__).parent / "data"


def _status(env: str, image_id: str | None) -> ServiceStatus:
    facts = None
    if image_id is not None:
        facts = parse_containers((DATA / "inspect_run_and_compose.json").read_text())["web"]
        facts.image_id = image_id
    return ServiceStatus(Placement(env, f"{env}-1", "web", "web"), facts)


def test_same_image_no_drift() -> None:
    d = drift([_status("test", "sha256:aa"), _status("prod", "sha256:aa")], ["test", "prod"])
    assert not d[0].differs


def test_different_or_absent_image_drifts() -> None:
    assert drift([_status("test", "sha256:aa"), _status("prod", "sha256:bb")],
                 ["test", "prod"])[0].differs
    assert drift([_status("test", "sha256:aa"), _status("prod", None)],
                 ["test", "prod"])[0].differs
