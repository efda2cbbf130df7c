"""Data benchmark: throughput of `ferryman sync-data` for about 1 GB of mixed files (many
small, a few large) beside `tar | ssh | tar` of the same data between the same hosts.

Run: .venv/bin/python bench/data_sync.py   (needs a local Docker engine; starts and removes
two test hosts). Prints figures; asserts nothing.
"""

from __future__ import annotations

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


def main() -> None:
    ensure_host_image()
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work, prefix=f"ferryman-bench-{uuid.uuid4().hex[:6]}")
        try:
            test, prod = lab.start(["test", "prod"])
            size = int(lab.sh(test, MAKE_DATA).split()[-1])
            lab.sh(prod, "mkdir -p /srv/bench")
            config = work / "ferryman.yml"
            config.write_text(CONFIG.format(workdir=work, known_hosts=lab.known_hosts,
                                            key=lab.key_path, test_port=test.port,
                                            prod_port=prod.port))
            print(f"data: {size / 1e6:.0f} MB ({SMALL_FILES} files of 4 KB, "
                  f"{'+'.join(map(str, LARGE_MB))} MB random, {TEXT_MB} MB text)")

            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config),
                                   "sync-data", "test", "prod", "--yes"],
                                  capture_output=True, text=True)
            wall = time.monotonic() - t0
            if proc.returncode:
                raise SystemExit(f"sync-data failed:\n{proc.stderr}")
            print(f"ferryman sync-data:   {wall:6.1f} s, {size / 1e6 / wall:6.1f} MB/s "
                  "(snapshot, send, safety backup, unpack, verify, swap)")
            for line in proc.stderr.splitlines():
                if " ok (" in line:
                    print("   ", line.strip())

            lab.sh(prod, "rm -rf /srv/bench.copy && mkdir -p /srv/bench.copy")
            t0 = time.monotonic()
            src = subprocess.Popen([*ssh(lab, test.port), "tar", "-C", "/srv/bench", "-cf", "-",
                                    "."], stdout=subprocess.PIPE)
            dst = subprocess.run([*ssh(lab, prod.port), "tar", "-C", "/srv/bench.copy", "-xf",
                                  "-"], stdin=src.stdout)
            src.wait()
            secs = time.monotonic() - t0
            if src.returncode or dst.returncode:
                raise SystemExit("tar | ssh | tar failed")
            print(f"tar | ssh | tar:      {secs:6.1f} s, {size / 1e6 / secs:6.1f} MB/s "
                  "(copy only: no stop, no checksum, no safety copy)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
