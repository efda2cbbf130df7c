"""Fan-out benchmark: one FROM host releasing a ~100 MB image (nothing in common with what TO
runs) to a TO of three hosts, beside the same release to a TO of one host. FROM's `docker
save` runs once for the three.

Run: .venv/bin/python bench/fanout.py [bookworm|trixie] [MBIT]   (needs a local Docker engine;
starts and removes four test hosts). Prints figures; asserts nothing.

MBIT: FROM's uplink shaped to that many megabits per second (`tc tbf` in FROM's test host), as
between servers in two places; unshaped, the four hosts and the relay share this machine's
cores, and the three `docker load`s at once are what the fan-out waits on.
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
from ferryman.lab.hosts import LabHost

BLOB_MB = 100

CONFIG = """\
version: 1
project: bench
log_dir: {workdir}/logs
ssh: {{known_hosts: {known_hosts}}}
environments:
  test: {{hosts: [{{name: test-1, address: "root@127.0.0.1:{test}", identity_file: {key}}}]}}
  prod:
    hosts:
{prod}
services:
  web: {{health: {{http: "http://127.0.0.1:8080/health", interval: 200ms}}}}
"""


def _host(name: str, port: int, key: Path) -> str:
    return f'      - {{name: {name}, address: "root@127.0.0.1:{port}", identity_file: {key}}}'


def release(config: Path) -> tuple[float, float, str]:
    """Wall time, the transfer steps' time, and what the carrying step said."""
    logs = config.parent / "logs"
    known = set(logs.glob("*.jsonl")) if logs.exists() else set()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config), "release",
                           "test", "prod", "--yes"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise SystemExit(f"release failed:\n{proc.stderr}")
    sending, said = 0.0, ""
    for path in set(logs.glob("*.jsonl")) - known:
        for line in path.read_text().splitlines():
            e = json.loads(line)
            if e["event"] == "step_ok" and e["name"].startswith("transfer images"):
                sending += e["duration"]
                said = e.get("result") or said
    return wall, sending, said


def reset(lab: Lab, hosts: list[LabHost], old: str, new: str) -> None:
    """Each PROD host runs `old` and holds nothing of `new`."""
    for host in hosts:
        for c in lab.sh(host, "docker ps -aq").split():
            lab.exec(host, ["docker", "rm", "-f", c])
        lab.sh(host, f"docker rmi {new} >/dev/null 2>&1 || true")
        lab.exec(host, ["docker", "run", "-d", "--name", "web", "-p", "8080:8080", "--init",
                        old])


def main() -> None:
    ensure_host_image()
    old = build_app_image("v1", "app v1")
    new = build_app_image("bench-fan", "bench fan-out", blob_mb=BLOB_MB)
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work, prefix=f"ferryman-bench-{uuid.uuid4().hex[:6]}")
        try:
            kind = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
            mbit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
            test, *prods = lab.start(["test", "prod1", "prod2", "prod3"], kinds=dict.fromkeys(
                ["test", "prod1", "prod2", "prod3"], kind))
            print(f"host kind: {kind}, FROM's uplink: "
                  + (f"{mbit} Mbit/s (tc tbf)" if mbit else "loopback, unshaped"))
            if mbit:
                lab.exec(test, ["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
                                f"{mbit}mbit", "burst", "256kb", "latency", "100ms"])
            lab.load_image(test, new)
            lab.exec(test, ["docker", "run", "-d", "--name", "web", "-p", "8080:8080",
                            "--init", new])
            for host in prods:
                lab.load_image(host, old)

            def config(hosts: list[LabHost]) -> Path:
                path = work / f"ferryman-{len(hosts)}.yml"
                path.write_text(CONFIG.format(
                    workdir=work, known_hosts=lab.known_hosts, key=lab.key_path,
                    test=test.port, prod="\n".join(_host(f"prod-{n}", h.port, lab.key_path)
                                                   for n, h in enumerate(hosts, 1))))
                return path

            reset(lab, prods[:1], old, new)
            one_wall, one_send, _ = release(config(prods[:1]))
            print(f"TO of 1 host:   {one_wall:5.1f} s wall, transfer {one_send:5.1f} s")
            reset(lab, prods, old, new)
            three_wall, three_send, said = release(config(prods))
            print(f"TO of 3 hosts:  {three_wall:5.1f} s wall, transfer {three_send:5.1f} s "
                  f"({said})")
            print(f"3 hosts / 1 host: wall {three_wall / one_wall:4.2f}x, transfer "
                  f"{three_send / one_send:4.2f}x  (target <= 1.5)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
