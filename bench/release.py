"""Release benchmark: bytes on the wire and wall time of `ferryman release` for an image of
about 200 MB whose top 5 MB layer changed (TO holds the previous version: only that layer
goes), of a no-op release, and of a release to a TO that holds nothing of the app (whole
images), beside `docker save | ssh docker load` of the same image between the same hosts;
then the issue's targets as ratios from this one run.

Run: .venv/bin/python bench/release.py [bookworm|trixie] [MBIT]   (needs a local Docker engine;
starts and removes two test hosts of that kind). Prints figures; asserts nothing.

MBIT: FROM's uplink shaped to that many megabits per second (`tc tbf` on the eth0 of FROM's
test host, a network namespace this run created), for both ferryman and the plain pipe: what
a release between two servers over a real link costs, where loopback measures CPU and disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ferryman.lab import Lab, build_app_image, ensure_host_image
from ferryman.lab.images import docker

BASE_MB = 195
TOP_MB = 5

CONFIG = """\
version: 1
project: bench
log_dir: {workdir}/logs
ssh: {{known_hosts: {known_hosts}}}
environments:
  test: {{hosts: [{{name: test-1, address: "root@127.0.0.1:{test_port}", identity_file: {key}}}]}}
  prod: {{hosts: [{{name: prod-1, address: "root@127.0.0.1:{prod_port}", identity_file: {key}}}]}}
services:
  web: {{health: {{http: "http://127.0.0.1:8080/health", interval: 200ms}}}}
"""


def images() -> tuple[str, str]:
    """v1: busybox app + 195 MB; v2: v1 plus a 5 MB top layer (docker commit)."""
    v1 = build_app_image("bench1", "bench v1", blob_mb=BASE_MB)
    v2 = "ferryman-app:bench2"
    if docker("image", "inspect", v2, check=False).returncode != 0:
        name = f"ferryman-bench-{uuid.uuid4().hex[:6]}"
        docker("run", "--name", name, v1, "sh", "-c",
               f"head -c {TOP_MB * 1024 * 1024} /dev/urandom > /data/top")
        docker("commit", "--change", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]', name, v2)
        docker("rm", name)
    return v1, v2


def ssh(lab: Lab, port: int) -> list[str]:
    return ["ssh", "-i", str(lab.key_path), "-p", str(port), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={lab.known_hosts}", "root@127.0.0.1"]


def relay(src: list[str], dst: list[str]) -> tuple[int, float]:
    """`src | dst` through this process, counting bytes: the plain scp -3 way."""
    t0 = time.monotonic()
    a = subprocess.Popen(src, stdout=subprocess.PIPE)
    b = subprocess.Popen(dst, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert a.stdout is not None and b.stdin is not None
    n = 0
    while chunk := a.stdout.read(1 << 20):
        b.stdin.write(chunk)
        n += len(chunk)
    b.stdin.close()
    if a.wait() or b.wait():
        raise SystemExit("baseline transfer failed")
    return n, time.monotonic() - t0


def clear_prod(lab: Lab, prod: object, images: list[str]) -> None:
    """PROD without the app: every container and both images gone."""
    for old in lab.sh(prod, "docker ps -aq").split():  # type: ignore[arg-type]
        lab.exec(prod, ["docker", "rm", "-f", old])  # type: ignore[arg-type]
    for image in images:
        lab.sh(prod, f"docker rmi {image} >/dev/null 2>&1 || true")  # type: ignore[arg-type]


def release(config: Path) -> tuple[float, int | None, dict[str, float]]:
    logs = config.parent / "logs"
    known = set(logs.glob("*.jsonl")) if logs.exists() else set()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config), "release",
                           "test", "prod", "--yes"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise SystemExit(f"release failed:\n{proc.stderr}")
    wire = None
    steps: dict[str, float] = {}
    for path in set(logs.glob("*.jsonl")) - known:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if "wire_bytes" in event:
                wire = (wire or 0) + event["wire_bytes"]
            if event["event"] == "step_ok":
                steps[event["name"]] = event["duration"]
    return wall, wire, steps


def main() -> None:
    ensure_host_image()
    v1, v2 = images()
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work, prefix=f"ferryman-bench-{uuid.uuid4().hex[:6]}")
        try:
            kind = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
            mbit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
            test, prod = lab.start(["test", "prod"], kinds={"test": kind, "prod": kind})
            print(f"host kind: {kind}, FROM's uplink: "
                  + (f"{mbit} Mbit/s (tc tbf)" if mbit else "loopback, unshaped"))
            lab.load_image(test, v1)
            lab.load_image(test, v2)
            lab.load_image(prod, v1)
            # --init: busybox httpd as PID 1 ignores SIGTERM; that 10 s stop is not the
            # release's own cost.
            for host, image in ((test, v2), (prod, v1)):
                lab.exec(host, ["docker", "run", "-d", "--name", "web", "-p", "8080:8080",
                                "--init", image])
            if mbit:
                lab.exec(test, ["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
                                f"{mbit}mbit", "burst", "256kb", "latency", "100ms"])
            config = work / "ferryman.yml"
            config.write_text(CONFIG.format(workdir=work, known_hosts=lab.known_hosts,
                                            key=lab.key_path, test_port=test.port,
                                            prod_port=prod.port))
            size = int(lab.exec(test, ["docker", "image", "inspect", "--format", "{{.Size}}",
                                       v2]).stdout)
            print(f"image {v2}: {size / 1e6:.1f} MB ({BASE_MB} MB base + {TOP_MB} MB top layer)")

            top = TOP_MB * 1024 * 1024
            wall, wire, steps = release(config)
            print(f"ferryman release:           {wall:6.1f} s wall, "
                  f"{(wire or 0) / 1e6:7.1f} MB on the wire (TO holds v1: top layer only)")
            for name, secs in steps.items():
                print(f"    {secs:6.1f} s  {name}")
            noop, _, _ = release(config)
            print(f"ferryman release (no-op):   {noop:6.1f} s wall")

            # Whole images: TO holds nothing of the app (a first release there).
            clear_prod(lab, prod, [v1, v2])
            whole_wall, whole_wire, whole_steps = release(config)
            send = next(v for k, v in whole_steps.items() if k.startswith("transfer images"))
            print(f"ferryman release (whole):   {whole_wall:6.1f} s wall, "
                  f"{(whole_wire or 0) / 1e6:7.1f} MB on the wire, transfer step {send:.1f} s")

            clear_prod(lab, prod, [v1, v2])
            n, secs = relay([*ssh(lab, test.port), "docker", "save", v2],
                            [*ssh(lab, prod.port), "docker", "load"])
            print(f"docker save | ssh docker load: {secs:4.1f} s wall, "
                  f"{n / 1e6:7.1f} MB on the wire")
            print("targets (ratios from this run):")
            print(f"  bytes leaving FROM / top layer: {(wire or 0) / top:5.2f}x  (target <= 1.1)")
            print(f"  partial release / baseline:     {wall / secs:5.2f}x  (target <= 0.2)")
            print(f"  no-op release:                  {noop:5.2f} s  (target < 1)")
            print(f"  whole-image transfer speed / ssh: {secs / send:5.2f}x  (target >= 0.95)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
