"""Data benchmark: throughput of `ferryman sync-data` for about 1 GB of mixed files (many
small, a few large) beside `tar | ssh | tar` of the same data between the same hosts.

Run: .venv/bin/python bench/data_sync.py [bookworm|trixie] [disk] [MBIT]   (needs a local
Docker engine; starts and removes two test hosts of that kind). Prints figures; asserts
nothing.

MBIT: FROM's uplink shaped to that many megabits per second (`tc tbf` in FROM's test host) for
both sides, one round each (a round takes minutes at such rates).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ferryman.lab import Lab, ensure_host_image

SMALL_FILES = 20000  # 4 KB each: 80 MB
LARGE_MB = (400, 300, 200)  # random, incompressible
TEXT_MB = 60  # compressible
ROUNDS = 3

CONFIG = """\
version: 1
project: bench
log_dir: {workdir}/logs
ssh: {{known_hosts: {known_hosts}}}
environments:
  test: {{hosts: [{{name: test-1, address: "root@127.0.0.1:{test_port}", identity_file: {key}}}]}}
  prod: {{hosts: [{{name: prod-1, address: "root@127.0.0.1:{prod_port}", identity_file: {key}}}]}}
data:
  paths: [/srv/bench]
  backup_dir: /var/lib/ferryman/backups
"""

MAKE_DATA = f"""
set -e
mkdir -p /srv/bench/small /srv/bench/large /srv/bench/text
i=0; while [ $i -lt {SMALL_FILES // 100} ]; do
  d=/srv/bench/small/$i; mkdir -p $d
  head -c {4096 * 100} /dev/urandom | split -b 4096 -d -a 3 - $d/f
  i=$((i+1))
done
n=0; for mb in {' '.join(map(str, LARGE_MB))}; do
  head -c $((mb * 1024 * 1024)) /dev/urandom > /srv/bench/large/blob$n; n=$((n+1))
done
yes 'ferryman moves data between environments, stop-clean, checksummed' \
  | head -c $(({TEXT_MB} * 1024 * 1024)) > /srv/bench/text/log.txt
du -sb /srv/bench | cut -f1
"""


def ssh(lab: Lab, port: int) -> list[str]:
    return ["ssh", "-i", str(lab.key_path), "-p", str(port), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={lab.known_hosts}", "root@127.0.0.1"]


def ferryman(config: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config), *args],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"ferryman {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stderr


def step_seconds(log: str, name: str) -> float:
    """The duration the terminal view printed for the step called `name`."""
    lines = log.splitlines()
    at = next(i for i, line in enumerate(lines) if name in line and "step " in line)
    took = next(line for line in lines[at:] if " ok (" in line)
    return float(took.split(" ok (", 1)[1].split("s)", 1)[0])


def main() -> None:
    ensure_host_image()
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work, prefix=f"ferryman-bench-{uuid.uuid4().hex[:6]}")
        try:
            kind = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
            # Each host's data and backups on a tmpfs: on this machine creating a file in some
            # folders of its disk costs ~0.6 ms of kernel time, 30x what it costs in others
            # (20,000 files of 4 KB: 11-14 s against 0.45 s; ext4 allocating in crowded block
            # groups), and which folders are slow changed within minutes: that drowned every
            # other figure. `disk`: folders of this run's temporary directory instead.
            disk = "disk" in sys.argv[2:]
            mbit = next((int(a) for a in sys.argv[2:] if a.isdigit()), 0)
            where = ((f"{work}/{{role}}/srv:/srv", f"{work}/{{role}}/ferryman:/var/lib/ferryman")
                     if disk else ())
            test, prod = lab.start(["test", "prod"], kinds={"test": kind, "prod": kind},
                                   volumes=where,
                                   tmpfs=() if disk else ("/srv", "/var/lib/ferryman"))
            print(f"host kind: {kind}; data and backups "
                  + (f"in folders bound from {work}" if disk else "on tmpfs"))
            size = int(lab.sh(test, MAKE_DATA).split()[-1])
            lab.sh(prod, "mkdir -p /srv/bench")
            config = work / "ferryman.yml"
            config.write_text(CONFIG.format(workdir=work, known_hosts=lab.known_hosts,
                                            key=lab.key_path, test_port=test.port,
                                            prod_port=prod.port))
            print(f"data: {size / 1e6:.0f} MB ({SMALL_FILES} files of 4 KB, "
                  f"{'+'.join(map(str, LARGE_MB))} MB random, {TEXT_MB} MB text)")

            def settle() -> None:
                # Each run starts with nothing left to write back and the last run's deleted
                # files reclaimed: the previous run's disk work would slow the next one down.
                subprocess.run(["sync"], check=True)
                time.sleep(3)

            def plain() -> float:
                lab.sh(prod, "rm -rf /srv/bench.copy && mkdir -p /srv/bench.copy")
                settle()
                t0 = time.monotonic()
                src = subprocess.Popen([*ssh(lab, test.port), "tar", "-C", "/srv/bench",
                                        "-cf", "-", "."], stdout=subprocess.PIPE)
                dst = subprocess.run([*ssh(lab, prod.port), "tar", "-C", "/srv/bench.copy",
                                      "-xf", "-"], stdin=src.stdout)
                src.wait()
                took = time.monotonic() - t0
                if src.returncode or dst.returncode:
                    raise SystemExit("tar | ssh | tar failed")
                lab.sh(prod, "rm -rf /srv/bench.copy")
                return took

            def synced() -> tuple[float, float, str]:
                # PROD back to an empty folder and no backups, as before the first round.
                lab.sh(prod, "rm -rf /srv/bench /var/lib/ferryman/backups && mkdir -p /srv/bench")
                lab.sh(test, "rm -rf /var/lib/ferryman/backups")
                settle()
                t0 = time.monotonic()
                out = ferryman(config, "sync-data", "test", "prod", "--yes")
                return time.monotonic() - t0, step_seconds(out, "snapshot test"), out

            def alone() -> float:
                lab.sh(test, "rm -rf /var/lib/ferryman/backups")
                settle()
                return step_seconds(ferryman(config, "backup", "test"), "snapshot test")

            # Rounds alternate, so a slow spell of the shared disk falls on both sides alike;
            # medians are compared.
            bases, walls, downs, snaps = [], [], [], []
            if mbit:
                lab.exec(test, ["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
                                f"{mbit}mbit", "burst", "256kb", "latency", "100ms"])
                print(f"FROM's uplink: {mbit} Mbit/s (tc tbf)")
            for n in range(1 if mbit else ROUNDS):
                bases.append(plain())
                wall, down, out = synced()
                walls.append(wall)
                downs.append(down)
                snaps.append(alone())
                print(f"round {n + 1}: tar | ssh | tar {bases[-1]:5.1f} s; sync-data "
                      f"{wall:5.1f} s (snapshot {down:4.1f} s); a plain backup's snapshot "
                      f"{snaps[-1]:4.1f} s")
            for line in out.splitlines():
                if " ok (" in line:
                    print("   ", line.strip())
            base, wall = statistics.median(bases), statistics.median(walls)
            down, snap = statistics.median(downs), statistics.median(snaps)
            print(f"tar | ssh | tar:      {base:6.1f} s, {size / 1e6 / base:6.1f} MB/s "
                  "(median; copy only: no stop, no checksum, no safety copy)")
            print(f"ferryman sync-data:   {wall:6.1f} s, {size / 1e6 / wall:6.1f} MB/s "
                  "(median; stop, snapshot streamed to PROD, hashed, unpacked, counted; "
                  "safety backup, swap)")
            print(f"target >= 0.9x tar|ssh|tar: {base / wall:.2f}x")
            print(f"writers' downtime: the snapshot took {down:.1f} s in sync-data, "
                  f"{snap:.1f} s in a plain backup (medians; target: no longer than the local "
                  "snapshot)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
