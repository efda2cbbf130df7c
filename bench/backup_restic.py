"""restic engine benchmark: what the second backup stores after 1% of the data changed, as
a share of what the first stored (the target is at most 3%).

PROD holds DATA_MB of random bytes in FILES files (a volume and a folder); VAULT, a third
test host, holds the restic repository, reached by PROD over sftp. `ferryman backup prod`
runs twice, with 1% of the files rewritten in between; each backup's share is the growth of
the repository folder on VAULT (du -sb), restic's metadata included.

Run: .venv/bin/python bench/backup_restic.py   (needs a local Docker engine; starts and
removes two test hosts). Prints figures; asserts nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ferryman.lab import Lab, ensure_host_image
from ferryman.lab.trust import trust

DATA_MB = 200
FILES = 400  # 500 KB each: 1% churn rewrites 4 of them
REPO = "/srv/restic/bench"

CONFIG = """\
version: 1
project: bench
log_dir: {workdir}/logs
ssh: {{known_hosts: {known_hosts}}}
environments:
  prod: {{hosts: [{{name: prod-1, address: "root@127.0.0.1:{port}", identity_file: {key}}}]}}
data:
  volumes: [benchdata]
  paths: [/srv/bench/files]
  restic:
    repository: "sftp:vault:{repo}"
    password_file: /root/restic.pass
    check_subset: 10%
"""


def stored(lab: Lab, vault) -> int:  # type: ignore[no-untyped-def]
    return int(lab.sh(vault, f"du -sb {REPO}").split()[0])


def backup(config: Path) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ferryman", "-c", str(config), "backup",
                           "prod"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"backup failed:\n{proc.stderr}")
    return time.monotonic() - t0


def main() -> None:
    ensure_host_image()
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp), prefix="ferryman-bench-restic")
        try:
            prod, vault = lab.start(["prod", "vault"])
            trust(lab, prod, vault, "vault")
            half = FILES // 2
            per = DATA_MB * 1024 * 1024 // FILES
            lab.sh(prod, "echo bench-secret > /root/restic.pass && "
                         "docker volume create benchdata >/dev/null && mkdir -p /srv/bench/files "
                         f"&& for i in $(seq 1 {half}); do "
                         f"head -c {per} /dev/urandom > /var/lib/docker/volumes/benchdata/_data/$i"
                         f" && head -c {per} /dev/urandom > /srv/bench/files/$i; done")
            lab.sh(vault, f"mkdir -p {REPO}")
            config = Path(tmp) / "ferryman.yml"
            config.write_text(CONFIG.format(workdir=tmp, known_hosts=lab.known_hosts,
                                            port=prod.port, key=lab.key_path, repo=REPO))
            empty = 0
            t1 = backup(config)
            first = stored(lab, vault) - empty
            churn = FILES // 100
            lab.sh(prod, f"for i in $(seq 1 {churn // 2}); do head -c {per} /dev/urandom > "
                         f"/var/lib/docker/volumes/benchdata/_data/$i && head -c {per} "
                         f"/dev/urandom > /srv/bench/files/$i; done")
            t2 = backup(config)
            second = stored(lab, vault) - empty - first
            changed = churn * per
            print(f"data: {DATA_MB} MB in {FILES} files; changed before the second backup: "
                  f"{churn} files, {changed} bytes ({changed / (FILES * per):.1%})")
            print(f"first backup:  {first} bytes stored on the repository host, {t1:.1f} s")
            print(f"second backup: {second} bytes stored, {t2:.1f} s")
            print(f"second / first: {second / first:.2%} (target <= 3%)")
        finally:
            lab.remove()


if __name__ == "__main__":
    main()
