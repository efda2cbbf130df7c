"""`ferryman backup`, `backups`, `backup verify`, `restore`, `sync-data` on real hosts.

Each host runs the demo app plus: `writer`, which keeps changing files in the volume
`shopdata` and the folder /srv/shop/files, and `exporter`, which must never be stopped.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labenv import Run, ferryman, kinds_of, on_both_kinds

from ferryman.lab.demo import ADDRESSES, CONFIG_FILE, Demo, down, up
from ferryman.lab.images import ensure_db_image

DATA = """\
data:
  volumes: [shopdata]
  paths: [/srv/shop/files, /opt/shop]
  stop: [writer, web, shop-api]
  never_stop: [exporter]
  backup_dir: /var/lib/ferryman/backups
  keep: 3
"""
WRITER = ("i=0; while true; do i=$((i+1)); echo $i > /data/counter; "
          "echo $i >> /files/log; sleep 0.05; done")


@pytest.fixture()
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    prefix = f"ferryman-pytest-data-{uuid.uuid4().hex[:6]}"
    made = up(tmp_path / "demo", prefix=prefix, kinds=kinds_of(request))
    try:
        for role in ("test", "prod"):
            sh(made, role, "mkdir -p /srv/shop/files && docker volume create shopdata >/dev/null"
               f" && head -c 300000 /dev/urandom > /srv/shop/files/{role}.bin"
               " && mkdir -p /srv/shop/files/sub && echo deep > /srv/shop/files/sub/x.txt"
               " && docker run -d --init --name writer -v shopdata:/data "
               "-v /srv/shop/files:/files --restart unless-stopped ferryman-app:v1 sh -c "
               f"'{WRITER}' >/dev/null"
               " && docker run -d --name exporter ferryman-app:v1 sleep 100000 >/dev/null")
        made.config.write_text(made.config.read_text() + DATA)
        yield made
    finally:
        down(tmp_path / "demo", prefix)


def sh(d: Demo, role: str, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def state(d: Demo, role: str, name: str) -> dict:
    return json.loads(sh(d, role, f"docker inspect --format '{{{{json .State}}}}' {name}"))


def tree(d: Demo, role: str) -> str:
    """sha256 of every file of the data, with its path: what 'the same bytes' means."""
    return sh(d, role, "cd /var/lib/docker/volumes/shopdata/_data && find . -type f | sort | "
              "xargs -r sha256sum; cd /srv/shop/files && find . -type f | sort | "
              "xargs -r sha256sum; cd /opt/shop && find . -type f | sort | xargs -r sha256sum")


def cli(d: Demo, *args: str) -> Run:
    return ferryman(d.config, *args)


def test_backup_is_taken_only_while_writers_are_stopped(demo: Demo) -> None:
    exporter = state(demo, "test", "exporter")
    run = cli(demo, "backup", "test")
    assert run.code == 0, run.err
    (m,) = cli(demo, "backups", "test", "--json").json()
    assert m["stopped"] == ["writer", "web", "shop-api"]
    writer = state(demo, "test", "writer")
    # The writer stopped before the first byte was read and started after the last one.
    assert writer["FinishedAt"] < m["snapshot_started"] < m["snapshot_ended"]
    assert m["snapshot_ended"] < writer["StartedAt"]
    assert writer["Running"]
    # The excluded container was never stopped.
    after = state(demo, "test", "exporter")
    assert after["Running"] and after["StartedAt"] == exporter["StartedAt"]
    items = {i["name"]: i for i in m["items"]}
    assert set(items) == {"shopdata", "/srv/shop/files", "/opt/shop"}
    assert items["/srv/shop/files"]["files"] >= 3 and len(items["shopdata"]["sha256"]) == 64
    assert "step 2/4 stop business containers on test-1" in run.err
    ok = cli(demo, "backup", "verify", "test", m["id"], "--drill")
    assert ok.code == 0, ok.err
    assert "all match" in ok.out


@on_both_kinds
def test_restore_brings_back_the_same_bytes(demo: Demo) -> None:
    sh(demo, "test", "docker stop writer >/dev/null")
    sh(demo, "test", "docker update --restart no writer >/dev/null")
    before = tree(demo, "test")
    assert cli(demo, "backup", "test").code == 0
    bid = cli(demo, "backups", "test", "--json").json()[-1]["id"]
    sh(demo, "test", "echo junk > /srv/shop/files/test.bin; rm -rf /srv/shop/files/sub; "
       "echo 0 > /var/lib/docker/volumes/shopdata/_data/counter; touch /srv/shop/files/new")
    assert tree(demo, "test") != before
    run = cli(demo, "restore", "test", bid, "--yes")
    assert run.code == 0, run.err
    assert tree(demo, "test") == before
    assert "safety backup s" in run.err
    kinds = [b["kind"] for b in cli(demo, "backups", "test", "--json").json()]
    assert kinds == ["backup", "safety"]
    assert state(demo, "test", "web")["Running"] and state(demo, "test", "exporter")["Running"]
    # No leftovers beside the live folders.
    assert sh(demo, "test", "ls -d /srv/shop/files.ferryman-* "
              "/var/lib/docker/volumes/shopdata/_data.ferryman-* 2>/dev/null || true") == ""


def test_corrupted_archive_changes_nothing(demo: Demo) -> None:
    assert cli(demo, "backup", "test").code == 0
    bid = cli(demo, "backups", "test", "--json").json()[-1]["id"]
    sh(demo, "test", f"f=$(ls /var/lib/ferryman/backups/shop/{bid}/volume-*); "
       "printf 'XXXX' | dd of=$f bs=1 seek=100 conv=notrunc 2>/dev/null")
    web = state(demo, "test", "web")
    bad = cli(demo, "backup", "verify", "test", bid)
    assert bad.code == 1 and "is damaged" in bad.err and "volume shopdata" in bad.err
    run = cli(demo, "restore", "test", bid, "--yes")
    assert run.code == 1
    assert "FAILED step 2/" in run.err and "damaged" in run.err
    assert state(demo, "test", "web")["StartedAt"] == web["StartedAt"]  # never stopped


def test_full_disk_during_apply_puts_everything_back(demo: Demo) -> None:
    # /srv/small is a 3 MB tmpfs holding a data folder; the backup holds 2 MB there.
    sh(demo, "test", "mkdir -p /srv/small && mount -t tmpfs -o size=3m tmpfs /srv/small && "
       "mkdir /srv/small/data && head -c 2000000 /dev/urandom > /srv/small/data/big")
    demo.config.write_text(demo.config.read_text().replace(
        "paths: [/srv/shop/files, /opt/shop]", "paths: [/srv/shop/files, /srv/small/data]"))
    assert cli(demo, "backup", "test").code == 0
    bid = cli(demo, "backups", "test", "--json").json()[-1]["id"]
    sh(demo, "test", "rm /srv/small/data/big && head -c 1200000 /dev/urandom > "
       "/srv/small/data/other && echo changed > /srv/shop/files/test.bin")
    sh(demo, "test", "docker update --restart no writer >/dev/null")
    sh(demo, "test", "docker stop writer >/dev/null")
    before = tree(demo, "test") + sh(demo, "test", "sha256sum /srv/small/data/*")
    demo.config.write_text(demo.config.read_text().replace(
        "stop: [writer, web, shop-api]", "stop: [web, shop-api]"))
    run = cli(demo, "restore", "test", bid, "--yes")
    assert run.code == 1, run.err
    assert "unpack folder /srv/small/data" in run.err
    assert "Wrote only" in run.err, run.err  # tar's words for a full disk
    assert "undo swap in folder /srv/shop/files" in run.err
    assert tree(demo, "test") + sh(demo, "test", "sha256sum /srv/small/data/*") == before
    assert state(demo, "test", "web")["Running"] and state(demo, "test", "shop-api")["Running"]
    assert "holds its previous data again" in run.err


@on_both_kinds
def test_sync_applies_the_targets_guard(demo: Demo) -> None:
    sh(demo, "prod", "docker stop writer >/dev/null")
    run = cli(demo, "sync-data", "test", "prod", "--yes")
    assert run.code == 0, run.err
    assert "send backup" in run.err
    files = sh(demo, "prod", "ls /srv/shop/files")
    assert "test.bin" in files and "prod.bin" not in files
    test_bin = sh(demo, "test", "sha256sum /srv/shop/files/test.bin").split()[0]
    assert sh(demo, "prod", "sha256sum /srv/shop/files/test.bin").split()[0] == test_bin
    # TEST's config came along; PROD's guard made it name PROD again.
    cfg = json.loads(sh(demo, "prod", f"cat {CONFIG_FILE}"))
    assert cfg["base_url"] == f"http://{ADDRESSES['prod']}:9380"
    kinds = {b["kind"] for b in cli(demo, "backups", "prod", "--json").json()}
    assert kinds == {"sync", "safety"}
    assert state(demo, "prod", "exporter")["Running"]
    assert state(demo, "prod", "web")["Running"]


def test_sync_cut_on_the_way_leaves_both_sides_as_they_were(demo: Demo) -> None:
    """sync-data streams each archive into PROD while TEST's snapshot writes it. PROD's
    backup disk filling up on the way fails the send: nothing of it stays on PROD, no half
    backup stays on TEST, and TEST's writers run again."""
    sh(demo, "test", "head -c 3000000 /dev/urandom > /srv/shop/files/big.bin")
    base = "/var/lib/ferryman/backups/shop"
    sh(demo, "prod", f"mkdir -p {base} && mount -t tmpfs -o size=1m tmpfs {base}")
    sh(demo, "prod", "docker stop writer >/dev/null")
    before = tree(demo, "prod")
    run = cli(demo, "sync-data", "test", "prod", "--yes")
    assert run.code == 1, run.err
    assert "FAILED step" in run.err and "sending" in run.err, run.err
    assert "No space left on device" in run.err, run.err
    assert tree(demo, "prod") == before
    assert sh(demo, "prod", f"ls -A {base}") == ""
    leftovers = sh(demo, "prod", "ls -d /srv/shop/*.ferryman-* /opt/*.ferryman-* "
                   "/var/lib/docker/volumes/shopdata/*.ferryman-* 2>/dev/null || true")
    assert leftovers == ""
    assert sh(demo, "test", f"ls -A {base} 2>/dev/null || true") == ""
    assert all(state(demo, "test", n)["Running"] for n in ("writer", "web", "shop-api"))
    assert all(state(demo, "prod", n)["Running"] for n in ("web", "shop-api"))


def test_prod_confirmation_dry_run_and_bad_input_change_nothing(demo: Demo) -> None:
    demo.config.write_text(demo.config.read_text().replace(
        'allowed_tags: ["v*"]', 'allowed_tags: ["v*"]\n      confirm: true'))
    before = sh(demo, "prod", "ls -R /srv/shop/files")
    asked = cli(demo, "sync-data", "test", "prod")
    assert asked.code == 2 and "confirmation" in asked.err
    dry = cli(demo, "sync-data", "test", "prod", "--dry-run")
    assert dry.code == 0, dry.err
    assert "swap in folder /srv/shop/files on prod-1" in dry.err
    # The lines printed are the argvs the steps run, with the real folders and compressor.
    assert re.search(r"\$ ferryman-pack /srv/shop/files /var/lib/ferryman/backups/shop/"
                     r"b\d{8}-\d{6}[^/ ]*/path-srv_shop_files\.tar\.(zst|gz) ", dry.err), dry.err
    # Each archive is read on TEST while it is written and unpacked on PROD as it arrives.
    assert re.search(r"test-1: ferryman-follow \S+/path-srv_shop_files\.tar\.(zst|gz) \| "
                     r"prod-1: ferryman-receive \S+ /srv/shop/files\.ferryman-new ",
                     dry.err), dry.err
    assert re.search(r"\$ ferryman-swap /srv/shop/files /srv/shop/files\.ferryman-new "
                     r"/srv/shop/files\.ferryman-old-r\d{8}-\d{6}", dry.err), dry.err
    assert "nothing was changed" in dry.err
    assert sh(demo, "prod", "ls /var/lib/ferryman/backups 2>/dev/null || true") == ""
    assert sh(demo, "test", "ls /var/lib/ferryman/backups 2>/dev/null || true") == ""
    assert sh(demo, "prod", "ls -R /srv/shop/files") == before

    unknown = cli(demo, "restore", "test", "b20200101-000000", "--yes")
    assert unknown.code == 2 and "no backup b20200101-000000 on test-1" in unknown.err
    garbage = cli(demo, "restore", "test", "../../etc", "--yes")
    assert garbage.code == 2 and "is not a backup id" in garbage.err
    demo.config.write_text(demo.config.read_text().replace("/srv/shop/files", "/srv/nowhere"))
    missing = cli(demo, "backup", "test")
    assert missing.code == 3 and "no folder /srv/nowhere on test-1" in missing.err


def test_database_dumps_are_taken_live_and_loaded_back(demo: Demo) -> None:
    """PostgreSQL and MariaDB stay up: dumped inside their containers, loaded back into them."""
    db_image = ensure_db_image()
    demo.lab.load_image(demo.hosts["test"], db_image)
    sh(demo, "test", f"docker run -d --name pg {db_image} postgres >/dev/null && "
       f"docker run -d --name maria {db_image} mariadb >/dev/null")
    psql = "docker exec -u postgres pg psql -tAq -c"
    mysql = "docker exec maria mysql -N -e"
    for _ in range(60):
        if sh(demo, "test", f"{psql} 'select 1' 2>/dev/null; {mysql} 'select 1' 2>/dev/null",
              check=False).split() == ["1", "1"]:
            break
        time.sleep(0.5)
    sh(demo, "test", f"docker exec -u postgres pg createdb shop && {psql} "
       "'create table t(n int); insert into t select generate_series(1, 1000)' -d shop"
       f" && {mysql} 'create database shop; create table shop.t(n int); "
       "insert into shop.t values (1),(2),(3)'")
    demo.config.write_text(demo.config.read_text().replace("data:\n", """data:
  dumps:
    - {container: pg, engine: postgres, database: shop}
    - {container: maria, engine: mysql, database: shop}
""", 1))
    pg_started = state(demo, "test", "pg")["StartedAt"]
    run = cli(demo, "backup", "test")
    assert run.code == 0, run.err
    m = cli(demo, "backups", "test", "--json").json()[-1]
    dumps = {i["name"]: i for i in m["items"] if i["kind"] == "dump"}
    assert set(dumps) == {"pg/shop", "maria/shop"} and dumps["pg/shop"]["bytes"] > 0
    assert state(demo, "test", "pg")["StartedAt"] == pg_started  # never stopped
    assert cli(demo, "backup", "verify", "test", m["id"], "--drill").code == 0

    sh(demo, "test", f"{psql} 'delete from t where n > 10' -d shop && "
       f"{mysql} 'delete from shop.t'")
    run = cli(demo, "restore", "test", m["id"], "--yes")
    assert run.code == 0, run.err
    assert sh(demo, "test", f"{psql} 'select count(*) from t' -d shop").strip() == "1000"
    assert sh(demo, "test", f"{mysql} 'select count(*) from shop.t'").strip() == "3"


def test_discover_download_and_restore_from_file(demo: Demo, tmp_path: Path) -> None:
    found = cli(demo, "backup", "test", "--discover", "--json")
    assert found.code == 0, found.err
    mounts = {(r["container"], r["name"]) for r in found.json()}
    assert ("writer", "shopdata") in mounts and ("writer", "/srv/shop/files") in mounts
    assert ("web", "/opt/shop/app_config.json") in mounts

    run = cli(demo, "backup", "test", "--download", str(tmp_path / "copies"))
    assert run.code == 0, run.err
    (folder,) = (tmp_path / "copies").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {p.name for p in folder.iterdir()} == {"manifest.json",
                                                  *(i["archive"] for i in manifest["items"])}
    # The copy on the operator's machine is all there is: the host loses its own.
    sh(demo, "test", f"rm -rf /var/lib/ferryman/backups/shop/{folder.name}")
    sh(demo, "test", "echo lost > /srv/shop/files/test.bin")
    back = cli(demo, "restore", "test", "--from-file", str(folder), "--yes")
    assert back.code == 0, back.err
    assert sh(demo, "test", "wc -c < /srv/shop/files/test.bin").strip() == "300000"
    assert cli(demo, "backup", "verify", "test", folder.name).code == 0


def test_failed_snapshot_still_starts_everything(demo: Demo) -> None:
    # The backup folder is a 1 MB tmpfs: the 300 KB of random bytes fit, the rest does not.
    sh(demo, "test", "head -c 3000000 /dev/urandom > /srv/shop/files/more.bin && "
       "mkdir -p /srv/tiny && mount -t tmpfs -o size=1m tmpfs /srv/tiny")
    demo.config.write_text(demo.config.read_text().replace(
        "backup_dir: /var/lib/ferryman/backups", "backup_dir: /srv/tiny"))
    run = cli(demo, "backup", "test")
    assert run.code == 1, run.err
    assert "FAILED step 3/4 snapshot test on test-1" in run.err
    assert "undo stop business containers on test-1" in run.err
    for name in ("writer", "web", "shop-api", "exporter"):
        assert state(demo, "test", name)["Running"], name
    # No half-written backup is left to be mistaken for a good one.
    assert sh(demo, "test", "ls /srv/tiny/shop 2>/dev/null || true").strip() == ""
