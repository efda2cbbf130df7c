"""run_spec against a real engine: a container recreated from its own `docker inspect` must
inspect the same, field by field. Uses the local engine: what is checked is Docker's own
reading of the argv, not ferryman's transport.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine import (
    FIELDS,
    Json,
    Scene,
    differences,
    docker,
    full_options,
    image_inspect,
    inspect,
    make_networks,
    per_network,
    run,
    volume_names,
    wait_healthy,
)

from ferryman.docker.runspec import run_spec
from ferryman.lab import build_app_image

pytestmark = pytest.mark.integration

V1 = "ferryman-app:v1"
V2CMD = "ferryman-app:v2cmd"
V2CMD_CMD = ["httpd", "-f", "-p", "8080", "-h", "/www2"]


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    build_app_image("v1", "app v1")
    s = Scene(uuid.uuid4().hex[:8], tmp_path / "bind")
    s.bind_dir.mkdir()
    (s.bind_dir / "conf.txt").write_text("hello\n")
    try:
        make_networks(s)
        s.volume = f"ferryman-rs-it-{s.suffix}-data"
        docker("volume", "create", s.volume)
        s.volumes.append(s.volume)
        yield s
    finally:
        for name in s.containers:
            docker("rm", "-f", "-v", name, check=False)
        # Anonymous volumes reused by name count as named for the copy: removed here.
        for volume in s.volumes:
            docker("volume", "rm", "-f", volume, check=False)
        for net in s.networks:
            docker("network", "rm", net, check=False)


def create_full(s: Scene) -> str:
    name = s.name("orig")
    docker("create", "--name", name, *full_options(s), V1, "-f", "-p", "8080", "-h", "/www")
    docker("network", "connect", "--alias", "web-b", "--ip", s.ip_b(20), s.net_b, name)
    docker("start", name)
    wait_healthy(name)
    return name


# --- field by field ---------------------------------------------------------------------------

def recreate(s: Scene, orig: Json, image: str) -> str:
    name = s.name(f"new-{image.rsplit(':', 1)[-1]}")
    spec = run_spec(orig, image_inspect(orig["Image"]), image, name=name)
    for argv in (spec.create, *spec.connects):
        run(argv)
    docker("start", name)
    wait_healthy(name)
    return name


# Both containers publish the same host ports and hold the same static IPs, as in a release:
# the original is stopped first (its inspect taken while it ran), then the copy is created and
# started in its place. The copy shares the original's named and anonymous volumes.

def test_same_image_recreates_every_field(scene: Scene) -> None:
    orig_name = create_full(scene)
    orig = inspect(orig_name)
    scene.volumes += [n for n in volume_names(orig) if n != scene.volume]
    docker("stop", orig_name)
    new = inspect(recreate(scene, orig, V1))
    assert len(FIELDS) >= 30
    assert differences(orig, new) == []
    assert new["Name"] != orig["Name"]


def test_new_image_takes_its_defaults_and_keeps_overrides(scene: Scene) -> None:
    build_app_image("v2cmd", "app v2", cmd=json.dumps(V2CMD_CMD), workdir="/www2", force=False)
    v2 = image_inspect(V2CMD)
    orig_name = create_full(scene)
    orig = inspect(orig_name)
    scene.volumes += [n for n in volume_names(orig) if n != scene.volume]
    docker("stop", orig_name)
    new = inspect(recreate(scene, orig, V2CMD))
    # The full container overrode entrypoint and cmd (kept); its WORKDIR was v1's (now v2's).
    assert differences(orig, new, {
        "Config.WorkingDir": "/www2", "Config.Image": V2CMD, "Image": v2["Id"],
    }) == []


def test_new_image_cmd_and_workdir_when_not_overridden(scene: Scene) -> None:
    build_app_image("v2cmd", "app v2", cmd=json.dumps(V2CMD_CMD), workdir="/www2", force=False)
    v2 = image_inspect(V2CMD)
    assert v2["Config"]["Cmd"] == V2CMD_CMD and v2["Config"]["WorkingDir"] == "/www2"
    orig_name = scene.name("simple")
    docker("create", "--name", orig_name, "--network", scene.net_a, "--network-alias", "web",
           "-p", "127.0.0.1::8080", "-v", f"{scene.volume}:/data", "-e", "APP_MODE=prod",
           "--label", "app=shop", "--restart", "always", V1)
    docker("start", orig_name)
    wait_healthy(orig_name)
    orig = inspect(orig_name)
    assert orig["Config"]["Cmd"] == image_inspect(V1)["Config"]["Cmd"]
    docker("stop", orig_name)
    new = inspect(recreate(scene, orig, V2CMD))
    assert new["Config"]["Cmd"] == V2CMD_CMD
    assert new["Config"]["WorkingDir"] == "/www2"
    assert new["Config"]["Entrypoint"] is None
    assert "APP_MODE=prod" in new["Config"]["Env"]
    assert new["Config"]["Labels"] == {"app": "shop"}
    assert new["HostConfig"]["PortBindings"] == orig["HostConfig"]["PortBindings"]
    assert new["HostConfig"]["RestartPolicy"] == orig["HostConfig"]["RestartPolicy"]
    assert volume_names(new) == [scene.volume]
    assert per_network("Aliases")(new) == {scene.net_a: ["web"]}
