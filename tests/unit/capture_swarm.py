"""Captures what a real Swarm of test hosts says, for the Swarm unit tests.

    python tests/unit/capture_swarm.py

Starts the Swarm of tests/integration/swarmlab.py (manager, worker1, worker2; stack `shop`
running ferryman-app:v1), releases v2 and then an unhealthy image with ferryman, creates a
service whose image no node has, drains worker1 and stops worker2. Writes
tests/unit/data/swarm/*.json (the raw stdout of each command). Removes its hosts at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "integration"))

from swarmlab import NODES, SwarmLab, deploy_stack, form_swarm  # noqa: E402

from ferryman.lab import Lab, build_app_image, ensure_host_image  # noqa: E402

OUT = HERE / "data" / "swarm"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ensure_host_image()
    images = {"v1": build_app_image("v1", "app v1"), "v2": build_app_image("v2", "app v2"),
              "bad": build_app_image("sw-bad", "app bad",
                                     cmd="rm /www/health; exec httpd -f -p 8080 -h /www")}
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(tmp, prefix="ferryman-capture-swarm")
        try:
            hosts = {h.role: h for h in lab.start(["test", *NODES])}
            for n in NODES:
                lab.load_image(hosts[n], images["v1"])
            for image in images.values():
                lab.load_image(hosts["test"], image)
            nodes = {n: hosts[n] for n in NODES}
            form_swarm(lab, nodes)
            sw = SwarmLab(lab, hosts["test"], nodes, Path(tmp), images)
            deploy_stack(lab, sw.manager, images["v1"])
            sw.wait_converged(2, images["v1"])
            cfg = sw.config()

            def save(name: str, *argv: str) -> None:
                res = lab.exec(sw.manager, list(argv), check=False)
                (OUT / name).write_text(res.stdout.decode())

            def release(image: str) -> None:
                sw.run_test_web(image)
                subprocess.run([sys.executable, "-m", "ferryman", "-c", str(cfg), "release",
                                "test", "prod", "--yes"], check=False)

            save("service_before.json", "docker", "service", "inspect", "shop_web")
            release(images["v2"])
            save("service_completed.json", "docker", "service", "inspect", "shop_web")
            release(images["bad"])
            save("service_rolled_back.json", "docker", "service", "inspect", "shop_web")
            save("tasks_rolled_back.jsonl", "docker", "service", "ps", "--no-trunc",
                 "--format", "{{json .}}", "shop_web")
            lab.exec(sw.manager, ["docker", "service", "create", "--detach", "--name", "lost",
                                  "--no-resolve-image", "ferryman-app:nowhere"])
            time.sleep(8)
            save("tasks_rejected.jsonl", "docker", "service", "ps", "--no-trunc", "--format",
                 "{{json .}}", "lost")
            lab.exec(sw.manager, ["docker", "node", "update", "--availability", "drain",
                                  "worker1"])
            lab.stop_host(nodes["worker2"])
            ids = ""
            for _ in range(60):
                ids = lab.exec(sw.manager, ["docker", "node", "ls", "-q"]).stdout.decode()
                listed = json.loads(lab.exec(sw.manager, ["docker", "node", "inspect",
                                                          *ids.split()]).stdout)
                if any(n["Status"]["State"] == "down" for n in listed):
                    break
                time.sleep(2)
            save("nodes.json", "docker", "node", "inspect", *ids.split())
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
