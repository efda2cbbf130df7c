"""`ferryman status` over many hosts: an environment of N hosts (each running the app) beside
an environment of one, read in one run.

Run: .venv/bin/python bench/status.py [N] [bookworm|trixie]   (default 16; needs a local Docker
engine; starts and removes N test hosts). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ferryman.lab import Lab, build_app_image, ensure_host_image

CONFIG = """\
version: 1
project: bench
log_dir: {workdir}/logs
ssh: {{known_hosts: {known_hosts}}}
environments:
  many:
    hosts:
{hosts}
services:
  web: {{health: {{http: "http://127.0.0.1:8080/health"}}}}
"""


def timed(config: Path, runs: int = 3) -> tuple[float, float]:
    """The median wall time of `ferryman status`, process start included, and the median CPU
    time ferryman's own process spent (the rest is waiting on the hosts)."""
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config), "status",
                               "--json"], capture_output=True, text=True)
        times.append(time.monotonic() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode:
            raise SystemExit(f"status failed:\n{proc.stderr}")
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    kind = sys.argv[2] if len(sys.argv) > 2 else "bookworm"
    ensure_host_image()
    app = build_app_image("v1", "app v1")
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work, prefix=f"ferryman-bench-{uuid.uuid4().hex[:6]}")
        try:
            t0 = time.monotonic()
            roles = [f"h{i}" for i in range(n)]
            hosts = lab.start(roles, timeout=300, kinds=dict.fromkeys(roles, kind))
            for h in hosts:
                lab.load_image(h, app)
                lab.exec(h, ["docker", "run", "-d", "--name", "web", "--init", app])
            print(f"{n} {kind} hosts up in {time.monotonic() - t0:.0f} s")

            def config(some: list) -> Path:  # type: ignore[type-arg]
                path = work / f"ferryman-{len(some)}.yml"
                path.write_text(CONFIG.format(
                    workdir=work, known_hosts=lab.known_hosts, hosts="\n".join(
                        f'      - {{name: h{i}, address: "root@127.0.0.1:{h.port}", '
                        f"identity_file: {lab.key_path}}}" for i, h in enumerate(some))))
                return path

            (one, one_cpu), (many, many_cpu) = timed(config(hosts[:1])), timed(config(hosts))
            print(f"status, 1 host:   {one:5.2f} s (median of 3, process start included); "
                  f"ferryman's own CPU {one_cpu:4.2f} s")
            print(f"status, {n} hosts: {many:5.2f} s; ferryman's own CPU {many_cpu:4.2f} s "
                  f"(the {n} hosts' sshd and docker share this machine's {os.cpu_count()} cores)")
            print(f"{n} hosts / 1 host: {many / one:4.2f}x  (target <= 1.5)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
