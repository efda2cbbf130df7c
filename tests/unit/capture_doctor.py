"""Captures what real test hosts answer to the commands of the logs, leaks, resources and clock
checks, for their unit tests.

    python tests/unit/capture_doctor.py [bookworm|trixie]

Starts the demo's TEST and PROD hosts of that kind, makes the faults the integration tests
make (a container logging without limits and one with, a memory-limited container killed by
the OOM killer, TEST's backend naming PROD through an /etc/hosts name), runs each check's
argv in the host (through `docker exec`: the commands are the same data the checks send over
SSH), and writes tests/unit/data/doctor/KIND.json: {NAME: {argv, exit_status, stdout}}.
Removes its hosts at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ferryman.checks import commands as cc
from ferryman.docker import commands as dc
from ferryman.lab.demo import ADDRESSES, Demo, down, up

OUT = Path(__file__).parent / "data" / "doctor"


def run(d: Demo, role: str, argv: list[str]) -> dict[str, Any]:
    proc = d.lab.exec(d.hosts[role], argv, check=False)
    return {"argv": argv, "exit_status": proc.returncode,
            "stdout": proc.stdout.decode(errors="replace")}


def faults(d: Demo) -> None:
    prod = ADDRESSES["prod"]
    d.lab.sh(d.hosts["prod"],
             "docker run -d --name chatty ferryman-app:v1 sh -c 'i=0; while [ $i -lt 2000 ]; "
             "do echo \"line $i\"; i=$((i+1)); done; exec sleep 100000'; "
             "docker run -d --name quiet --log-opt max-size=1m --log-opt max-file=2 "
             "ferryman-app:v1 sleep 100000; "
             "docker run -d --name hog --memory 16m --memory-swap 16m ferryman-app:v1 "
             "busybox dd if=/dev/zero of=/dev/null bs=64M count=1")
    d.lab.sh(d.hosts["test"],
             f"echo '{prod} cache.prod.test' >> /etc/hosts && mkdir -p /opt/backend && "
             "printf 'redis:\\n  host: cache.prod.test\\n  port: 6379\\n' > "
             "/opt/backend/settings.yaml && "
             f"docker run -d --name shop-backend -e DB_HOST={prod} "
             "-e REDIS_URL=redis://cache.prod.test:6379/0 -v /opt/backend:/conf "
             "ferryman-app:v1 sleep 100000")
    deadline = time.monotonic() + 60
    while d.lab.sh(d.hosts["prod"], "docker inspect -f '{{.State.Status}}' hog").strip() \
            != "exited":
        assert time.monotonic() < deadline, "hog did not die"
        time.sleep(0.5)


def capture(kind: str) -> dict[str, Any]:
    prefix = f"ferryman-capture-doc-{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp()) / "demo"
    d = up(workdir, prefix=prefix, kinds={"test": kind, "prod": kind})
    try:
        faults(d)
        names = ["chatty", "quiet", "hog", "web", "shop-api"]
        out: dict[str, Any] = {"kind": kind}
        out["inspect"] = run(d, "prod", dc.inspect_containers(names))
        paths = [c["LogPath"] for c in json.loads(out["inspect"]["stdout"])]
        out["log_sizes"] = run(d, "prod", cc.log_sizes(paths))
        out["dockerd_facts"] = run(d, "prod", cc.dockerd_facts())
        out["docker_info"] = run(d, "prod", dc.docker_info())
        out["stats"] = run(d, "prod", cc.container_stats())
        out["meminfo"] = run(d, "prod", cc.meminfo())
        out["kernel_oom"] = run(d, "prod", cc.kernel_oom())
        out["clock"] = run(d, "prod", cc.clock())
        out["time_sync"] = run(d, "prod", cc.time_sync())
        out["test_inspect"] = run(d, "test", dc.inspect_containers(["shop-backend", "shop-api"]))
        out["scan"] = run(d, "test", cc.scan_files(["/opt/backend", "/opt/shop"]))
        out["resolve"] = run(d, "test", cc.resolve_many(["cache.prod.test", "nowhere.test"]))
        return out
    finally:
        down(workdir, prefix)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
    OUT.mkdir(parents=True, exist_ok=True)
    data = capture(kind)
    # The kernel log is the machine's: keep the OOM lines of this run's containers only.
    ids = {c["Id"] for c in json.loads(data["inspect"]["stdout"])}
    lines = data["kernel_oom"]["stdout"].splitlines()
    kills = {ln.split("pid=")[1].split(",")[0] for ln in lines
             if "oom-kill:" in ln and any(i in ln for i in ids)}
    data["kernel_oom"]["stdout"] = "\n".join(
        ln for ln in lines if ln.startswith(("source", "unreadable"))
        or any(i in ln for i in ids) or any(f"process {p} " in ln for p in kills)) + "\n"
    path = OUT / f"{kind}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
