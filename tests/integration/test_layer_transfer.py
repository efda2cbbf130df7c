"""Layer-aware transfer on real engines: TEST runs an image built on the v1 that PROD already
holds, so a release sends its top layer only; on Docker 20.10 (legacy tar layout) and 26.1
(OCI layout), each way across the two; and a partial load that fails is sent again whole."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labenv import ferryman

from ferryman.lab.demo import CONFIG_FILE, Demo, down, up
from ferryman.lab.images import build_app_image, docker

LAYERED = "ferryman-app:v3-layered"
TOP_KB = 200


def _layers(image: str) -> list[str]:
    got = docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image, check=False)
    return json.loads(got.stdout) if got.returncode == 0 else []


def layered_image() -> str:
    """app v1 plus a top layer of random bytes (docker commit), built once per machine and
    again when v1 was built anew since (then it would not share v1's layers)."""
    base = _layers(build_app_image("v1", "app v1"))
    if _layers(LAYERED)[:len(base)] != base:
        name = f"ferryman-layered-{uuid.uuid4().hex[:6]}"
        docker("run", "--name", name, "ferryman-app:v1", "sh", "-c",
               f"head -c {TOP_KB * 1024} /dev/urandom > /www/top.bin")
        docker("commit", "--change", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]', name,
               LAYERED)
        docker("rm", name)
    return LAYERED


KINDS = {"bookworm": None, "trixie": {"test": "trixie", "prod": "trixie"},
         "bookworm-to-trixie": {"prod": "trixie"}, "trixie-to-bookworm": {"test": "trixie"}}


@pytest.fixture(params=list(KINDS))
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    prefix = f"ferryman-pytest-layers-{uuid.uuid4().hex[:6]}"
    image = layered_image()
    made = up(tmp_path / "demo", prefix=prefix, kinds=KINDS[request.param])
    try:
        test = made.hosts["test"]
        made.lab.load_image(test, image)
        made.lab.sh(test, "docker rm -f web >/dev/null")
        made.lab.exec(test, ["docker", "run", "-d", "--name", "web", "-p", "8080:8080",
                             "--init", "--restart", "unless-stopped", "-e", "APP_MODE=web",
                             "-v", f"{CONFIG_FILE}:/www/config.json:ro", image])
        yield made
    finally:
        down(tmp_path / "demo", prefix)


def _sent(d: Demo) -> dict:
    """The transfer's own account, from the newest run log."""
    logs = sorted((d.config.parent / "logs").glob("*-release-*.jsonl"))
    events = [json.loads(line) for line in logs[-1].read_text().splitlines()]
    [info] = [e for e in events if "wire_bytes" in e]
    [step] = [e for e in events if e["event"] == "step_start"
              and e["name"].startswith("transfer images")]
    warns = [e["message"] for e in events if e["event"] == "warn"]
    saves = [e for e in events if e["event"] == "command" and "docker save" in e["command"]]
    return {"wire": info["wire_bytes"], "image": info["image_bytes"], "params": step["params"],
            "warns": warns, "saves": len(saves)}


def test_only_the_missing_layer_is_sent_and_the_image_runs(pair: Demo) -> None:
    test, prod = pair.hosts["test"], pair.hosts["prod"]
    run = ferryman(pair.config, "release", "test", "prod", "--service", "web", "--yes")
    assert run.code == 0, run.err
    sent = _sent(pair)
    assert sent["params"]["left_out"] == "1 layer(s) prod-1 has"
    # The top layer is random (incompressible): it and the tar's metadata are all that left.
    assert sent["wire"] < TOP_KB * 1024 + 64 * 1024 < sent["image"]
    want = pair.lab.sh(test, "docker inspect --format '{{.Image}}' web").strip()
    assert pair.lab.sh(prod, "docker inspect --format '{{.Image}}' web").strip() == want
    assert pair.lab.sh(prod, "docker exec web cat /www/health").strip() == "ok"
    assert sent["warns"] == []
    # FROM's image is read once: on 20.10 the paths left out are computed, not read from a
    # first `docker save` (a wrong guess would fail the filter, warn and resend whole).
    assert sent["saves"] == 1


# dockerd restarted in another zone: Docker 20.10 writes the epoch each layer below an image's
# top is "created" at in dockerd's local time, and the v1id it names that layer by hashes it.
RESTART_IN_LONDON = """
ln -sf /usr/share/zoneinfo/Europe/London /etc/localtime
pkill dockerd; while pgrep -x dockerd >/dev/null; do sleep 0.2; done
setsid sh -c 'dockerd --host=unix:///var/run/docker.sock --dns 127.0.0.1 \
  >>/var/log/dockerd.log 2>&1' </dev/null >/dev/null 2>&1 &
i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.2; done
i=0; until [ "$(docker inspect -f '{{.State.Running}}' web)" = true ]; do
  i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.2
done
date -d @0 +%:z
"""


@pytest.mark.parametrize("pair", ["bookworm"], indirect=True)
def test_a_source_in_another_zone_still_sends_only_the_missing_layer(pair: Demo) -> None:
    test, prod = pair.hosts["test"], pair.hosts["prod"]
    assert pair.lab.sh(test, RESTART_IN_LONDON).split()[-1] == "+01:00"
    run = ferryman(pair.config, "release", "test", "prod", "--service", "web", "--yes")
    assert run.code == 0, run.err
    sent = _sent(pair)
    assert sent["params"]["left_out"] == "1 layer(s) prod-1 has"
    assert sent["wire"] < TOP_KB * 1024 + 64 * 1024
    assert sent["saves"] == 1 and sent["warns"] == []
    want = pair.lab.sh(test, "docker inspect --format '{{.Image}}' web").strip()
    assert pair.lab.sh(prod, "docker inspect --format '{{.Image}}' web").strip() == want


SHIM = """#!/bin/sh
# The first `docker load` fails, as when TO lost a layer between the plan and the load.
if [ "$1" = load ] && [ ! -e /tmp/ferryman-load-failed ]; then
  touch /tmp/ferryman-load-failed; cat > /dev/null
  echo "open /var/lib/docker/tmp/docker-import-1/abc/layer.tar: no such file or directory" >&2
  exit 1
fi
exec /usr/bin/docker "$@"
"""


@pytest.mark.parametrize("pair", ["bookworm"], indirect=True)
def test_a_partial_load_that_fails_is_sent_again_whole(pair: Demo) -> None:
    prod = pair.hosts["prod"]
    pair.lab.exec(prod, ["sh", "-c", "cat > /usr/local/bin/docker && chmod +x "
                         "/usr/local/bin/docker"], input=SHIM.encode())
    run = ferryman(pair.config, "release", "test", "prod", "--service", "web", "--yes")
    assert run.code == 0, run.err
    sent = _sent(pair)
    [warn] = sent["warns"]
    assert "sending only the missing layers to prod-1 failed" in warn
    assert "no such file or directory" in warn and "sending the whole images" in warn
    assert sent["wire"] > sent["image"] / 3  # the whole image went too
    assert pair.lab.sh(prod, "test -e /tmp/ferryman-load-failed && echo yes").strip() == "yes"
