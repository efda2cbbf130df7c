"""Releases to a Swarm of three real test hosts (one manager, two workers), with no registry.

One swarm serves the whole module (tests run in file order and build on each other): TEST
runs `web` by docker run; PROD is the stack `shop` (deployed from a compose file) whose
`shop_web` runs 2 replicas published with `mode: host` on port 9080 (the routing mesh does not
work nested, see swarmlab.py), gated by a healthcheck.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from labenv import ferryman
from swarmlab import NODES, SwarmLab, deploy_stack, form_swarm, get

from ferryman.lab import Lab, build_app_image, ensure_host_image
from ferryman.swarm.commands import image_label

BAD_CMD = "rm /www/health; exec httpd -f -p 8080 -h /www"


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmLab]:
    ensure_host_image()
    images = {
        "v1": build_app_image("v1", "app v1"),
        "v2": build_app_image("v2", "app v2"),
        "v3": build_app_image("v3", "app v3"),
        # Serves, but its healthcheck fails: Swarm must roll it back.
        "bad": build_app_image("sw-bad", "app bad", cmd=BAD_CMD),
    }
    workdir = tmp_path_factory.mktemp("swarm")
    lab = Lab(workdir, prefix=f"ferryman-pytest-swarm-{os.getpid()}")
    try:
        started = lab.start(["test", *NODES])
        hosts = {h.role: h for h in started}
        for node in NODES:
            lab.load_image(hosts[node], images["v1"])  # what PROD runs, loaded by hand
        for image in images.values():
            lab.load_image(hosts["test"], image)
        nodes = {n: hosts[n] for n in NODES}
        form_swarm(lab, nodes)
        sw = SwarmLab(lab, hosts["test"], nodes, workdir, images)
        deploy_stack(lab, sw.manager, images["v1"])
        sw.wait_converged(2, images["v1"])
        yield sw
    finally:
        lab.remove()


def _loop(sw: SwarmLab, stop: threading.Event, out: list[list[str]]) -> None:
    """Requests to every node, round after round, until told to stop (bounded anyway)."""
    addresses = [sw.lab.ip_address(sw.nodes[n]) for n in NODES]
    deadline = time.monotonic() + 300
    while not stop.is_set() and len(out) < 3000 and time.monotonic() < deadline:
        out.append([get(a) for a in addresses])
        time.sleep(0.05)


def test_release_under_load_reaches_every_node_first(sw: SwarmLab) -> None:
    sw.run_test_web(sw.images["v2"])
    cfg = sw.config()
    v2_id = sw.image_id(sw.test, sw.images["v2"])
    rounds: list[list[str]] = []
    stop = threading.Event()
    loop = threading.Thread(target=_loop, args=(sw, stop, rounds))
    loop.start()
    try:
        time.sleep(1)
        run = ferryman(cfg, "release", "test", "prod", "--yes")
        time.sleep(1)
    finally:
        stop.set()
        loop.join()
    assert run.code == 0, run.out + run.err
    print(run.out, run.err)
    from collections import Counter
    print(Counter(r for row in rounds for r in row))
    ref = sw.spec_image()
    assert ref.startswith("ferryman-app:r"), ref  # the release's own immutable tag
    assert sw.update_state() == "completed"
    for name, node in sw.nodes.items():  # every node holds it, by id, tagged
        assert sw.image_id(node, ref) == v2_id, name
        labels = sw.docker_json(sw.manager, "node", "inspect", name)[0]["Spec"]["Labels"]
        assert labels.get(image_label(v2_id)) == "true", name
    sw.wait_converged(2, ref)
    # No request failed: a node answers with the old or the new app, or refuses while it has
    # no task (start-first moves a task to the node whose host port is free); some node
    # answered in every round.
    flat = [r for row in rounds for r in row]
    assert len(rounds) > 20
    assert not [r for r in flat if r.startswith("error")], [r for r in flat if r != "app v1"]
    assert set(flat) <= {"app v1", "app v2", "refused"}
    assert all(any(r != "refused" for r in row) for row in rounds)
    assert "app v2" in rounds[-1] and "app v1" not in rounds[-1]
