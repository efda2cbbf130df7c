"""Scheduled backups on real hosts: `ferryman schedule run` passes, the environment lock,
missed runs, off-site copies on a third host, retention at both places, and a restore from
the off-site copy after PROD lost its own backups."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from labenv import Run, ferryman

from ferryman.config import load_config
from ferryman.lab.demo import Demo, down, up
from ferryman.lab.images import ensure_db_image
from ferryman.lab.trust import trust
from ferryman.schedule import cron
from ferryman.web import scheduler
from ferryman.web.runs import Launcher

BACKUPS = "/var/lib/ferryman/backups/shop"
OFFSITE = "/srv/offsite/shop/prod"
RUNS = "/var/lib/ferryman/shop/schedules.jsonl"
DATA = """\
data:
  volumes: [shopdata]
  paths: [/srv/shop/files]
  stop: [web, shop-api]
  keep: 2
  offsite: {env: vault, dir: /srv/offsite, keep: 2}
schedules:
  prod: {backup: "0 3 * * *", drill: "0 4 * * 0", offsite: true}
"""


@pytest.fixture(scope="module")
def lab3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """TEST, PROD and VAULT (the off-site host). Each test writes its own config (base.yml
    plus its data section) and keeps its backups in its own folders."""
    prefix = f"ferryman-pytest-sched-{uuid.uuid4().hex[:6]}"
    tmp_path = tmp_path_factory.mktemp("sched")
    made = up(tmp_path / "demo", prefix=prefix)
    try:
        (vault,) = made.lab.start(["vault"])
        made.hosts["vault"] = vault
        sh(made, "prod", "mkdir -p /srv/shop/files/sub && docker volume create shopdata >/dev/null"
           " && head -c 200000 /dev/urandom > /srv/shop/files/a.bin"
           " && echo deep > /srv/shop/files/sub/x.txt"
           " && head -c 50000 /dev/urandom > /var/lib/docker/volumes/shopdata/_data/db")
        env = (f"  vault:\n    hosts:\n      - name: vault-1\n"
               f"        address: root@127.0.0.1:{vault.port}\n"
               f"        identity_file: {made.lab.key_path}\n")
        text = made.config.read_text().replace("services:\n", env + "services:\n", 1)
        (made.config.parent / "base.yml").write_text(text)
        yield made
    finally:
        down(tmp_path / "demo", prefix)


def configure(d: Demo, data: str) -> None:
    d.config.write_text((d.config.parent / "base.yml").read_text() + data)


def sh(d: Demo, role: str, script: str, check: bool = True) -> str:
    return d.lab.sh(d.hosts[role], script, check=check)


def cli(d: Demo, *args: str) -> Run:
    return ferryman(d.config, *args)


def tree(d: Demo) -> str:
    return sh(d, "prod", "cd /var/lib/docker/volumes/shopdata/_data && find . -type f | sort | "
              "xargs -r sha256sum; cd /srv/shop/files && find . -type f | sort | "
              "xargs -r sha256sum")


def passes(d: Demo) -> dict[str, dict]:
    run = cli(d, "schedule", "run", "--json")
    assert run.code == 0, run.err
    return {j["job"]: j | {"err": run.err} for j in run.json()}


def settle_backup_days_ago(d: Demo, days: int) -> None:
    """Rewrites the backup runs on PROD as if the last one ran `days` fire times ago."""
    fire = cron.parse("0 3 * * *").last_fire(datetime.now(UTC)) - timedelta(days=days)
    lines = [json.loads(x) for x in sh(d, "prod", f"cat {RUNS}").splitlines()]
    for rec in lines:
        if rec["job"] == "backup":
            rec["due"] = fire.isoformat()
    d.lab.exec(d.hosts["prod"], ["sh", "-c", f"cat > {RUNS}"],
               input="".join(json.dumps(r) + "\n" for r in lines).encode())


def digests(d: Demo, role: str, folder: str) -> dict[str, str]:
    out = sh(d, role, f"cd {folder} && sha256sum *")
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


def test_scheduled_backups_copy_off_site_and_restore_from_there(lab3: Demo,
                                                               tmp_path: Path) -> None:
    configure(lab3, DATA)
    dry = cli(lab3, "schedule", "run", "--dry-run")
    assert dry.code == 0, dry.err
    assert "snapshot prod on prod-1" in dry.err and "copy backup b" in dry.err
    assert sh(lab3, "prod", f"ls {BACKUPS} 2>/dev/null || true") == ""
    assert sh(lab3, "prod", f"cat {RUNS} 2>/dev/null || true") == ""
    first = passes(lab3)
    assert first["backup"]["result"] == "ok" and first["drill"]["result"] == "ok"
    b1 = first["backup"]["id"]
    assert first["drill"]["id"] == b1  # the drill checked the backup just made
    assert "off-site" in first["drill"]["said"] and "match" in first["drill"]["said"]
    # The copy on the third host holds the very bytes PROD holds, manifest included.
    assert digests(lab3, "vault", f"{OFFSITE}/{b1}") == digests(lab3, "prod", f"{BACKUPS}/{b1}")
    assert sh(lab3, "vault", f"ls -A {OFFSITE}") == f"{b1}\n"  # no .part left
    # Nothing is due until the next fire time.
    again = passes(lab3)
    assert {j["result"] for j in again.values()} == {"not due"}

    # Another run holds PROD's lock: the due backup is skipped, not run beside it.
    settle_backup_days_ago(lab3, 3)
    owner = {"owner": "ops@elsewhere", "since": "2026-01-01T00:00:00+00:00",
             "command": "release prod v9", "token": "x", "machine": "elsewhere", "pid": 1}
    lab3.lab.exec(lab3.hosts["prod"], ["sh", "-c", "mkdir -p /var/lib/ferryman/shop/lock && "
                                       "cat > /var/lib/ferryman/shop/lock/owner.json"],
                  input=json.dumps(owner).encode())
    locked = passes(lab3)
    assert locked["backup"]["result"] == "skipped", locked
    assert "locked by ops@elsewhere" in locked["backup"]["said"]
    assert len(cli(lab3, "backups", "prod", "--json").json()) == 1
    sh(lab3, "prod", "rm -rf /var/lib/ferryman/shop/lock")

    # The skipped run settled nothing: the next pass runs it once, and says what was missed.
    second = passes(lab3)
    assert second["backup"]["result"] == "ok" and second["backup"]["missed"] == 2
    assert "missed 2 run(s)" in second["backup"]["err"]
    status = cli(lab3, "schedule", "status", "--json")
    assert status.code == 0, status.err
    last = {r["job"]: r["last"] for r in status.json()}
    assert last["backup"]["result"] == "ok" and last["backup"]["missed"] == 2
    results = [json.loads(x)["result"] for x in sh(lab3, "prod", f"cat {RUNS}").splitlines()]
    assert results == ["ok", "ok", "skipped", "ok"]  # backup, drill, skipped, backup

    # A third backup: keep=2 at both places removes the first.
    settle_backup_days_ago(lab3, 1)
    before = tree(lab3)
    third = passes(lab3)
    b3 = third["backup"]["id"]
    local = [m["id"] for m in cli(lab3, "backups", "prod", "--json").json()]
    away = [m["id"] for m in cli(lab3, "backups", "prod", "--offsite", "--json").json()]
    assert b1 not in local and b1 not in away and local[-1] == b3 and away == local

    # PROD loses every backup; the off-site copy brings the data back.
    sh(lab3, "prod", f"rm -rf {BACKUPS}/b*")
    sh(lab3, "prod", "echo changed > /srv/shop/files/a.bin && rm -rf /srv/shop/files/sub && "
       "echo 0 > /var/lib/docker/volumes/shopdata/_data/db")
    assert tree(lab3) != before
    gone = cli(lab3, "restore", "prod", b3, "--yes")
    assert gone.code == 2 and f"no backup {b3}" in gone.err
    back = cli(lab3, "restore", "prod", b3, "--from-offsite", "--yes")
    assert back.code == 0, back.err
    assert "fetched off-site copy" in back.err
    assert tree(lab3) == before
    assert cli(lab3, "backup", "verify", "prod", b3).code == 0

    # The dashboard's minute runs the same pass, as a dashboard run by "schedule".
    settle_backup_days_ago(lab3, 1)

    async def minute() -> str | None:
        cfg = load_config(lab3.config)
        launcher = Launcher(tmp_path / "runs", lambda: cfg)
        started = await scheduler.tick(lambda: cfg, launcher)
        await asyncio.gather(*launcher.tasks)
        return started

    assert asyncio.run(minute()) is not None
    last = json.loads(sh(lab3, "prod", f"tail -n 1 {RUNS}"))
    assert last["job"] == "backup" and last["result"] == "ok", last
    assert last["who"].startswith("schedule (web"), last
    assert asyncio.run(minute()) is None  # nothing due any more

    # The off-site disk is full: the job fails, the local backup stays, verified.
    settle_backup_days_ago(lab3, 1)
    sh(lab3, "vault", f"mount -t tmpfs -o size=64k tmpfs {OFFSITE}")
    try:
        failed = cli(lab3, "schedule", "run", "--json")
    finally:
        sh(lab3, "vault", f"umount {OFFSITE}")
    assert failed.code == 1, failed.err
    full = {j["job"]: j for j in failed.json()}
    assert full["backup"]["result"] == "failed", full
    assert "copy backup" in full["backup"]["said"], full
    kept = {m["id"]: m for m in cli(lab3, "backups", "prod", "--json").json()}
    assert kept[full["backup"]["id"]]["check"]["ok"] is True
    assert full["backup"]["id"] not in sh(lab3, "vault", f"ls -A {OFFSITE}")


REDIS = """\
data:
  dumps:
    - {container: cache, engine: redis}
  backup_dir: /var/lib/ferryman/redis-backups
"""


def wait_for(d: Demo, role: str, script: str, want: str) -> None:
    for _ in range(120):
        if sh(d, role, script + " 2>/dev/null", check=False).strip() == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{script} never printed {want}")


def db_image_on(d: Demo, role: str) -> str:
    image = ensure_db_image()
    if sh(d, role, f"docker image inspect {image} >/dev/null 2>&1 && echo yes",
          check=False).strip() != "yes":
        d.lab.load_image(d.hosts[role], image)
    return image


def test_redis_is_dumped_while_it_serves_and_loaded_back(lab3: Demo) -> None:
    configure(lab3, REDIS)
    db_image_on(lab3, "test")
    sh(lab3, "test", f"docker run -d --name cache --restart unless-stopped {ensure_db_image()} "
       "redis >/dev/null")
    cli_ = "docker exec -i cache redis-cli"
    wait_for(lab3, "test", f"{cli_} PING", "PONG")
    sh(lab3, "test", f"seq 1 1000 | sed 's/.*/SET key& value&/' | {cli_} >/dev/null")
    started = sh(lab3, "test", "docker inspect --format '{{.State.StartedAt}}' cache")
    before = sh(lab3, "test", f"{cli_} LASTSAVE")
    run = cli(lab3, "backup", "test")
    assert run.code == 0, run.err
    (m,) = cli(lab3, "backups", "test", "--json").json()
    (item,) = m["items"]
    assert item["engine"] == "redis" and item["bytes"] > 1000
    # Dumped by BGSAVE while it kept serving: never restarted, and a save happened.
    assert sh(lab3, "test", "docker inspect --format '{{.State.StartedAt}}' cache") == started
    assert int(sh(lab3, "test", f"{cli_} LASTSAVE")) > int(before)
    assert cli(lab3, "backup", "verify", "test", m["id"], "--drill").code == 0

    sh(lab3, "test", f"{cli_} FLUSHALL >/dev/null && {cli_} SET intruder 1 >/dev/null")
    back = cli(lab3, "restore", "test", m["id"], "--yes")
    assert back.code == 0, back.err
    assert sh(lab3, "test", f"{cli_} DBSIZE").strip() == "1000"
    assert sh(lab3, "test", f"{cli_} GET key500").strip() == "value500"
    assert sh(lab3, "test", f"{cli_} EXISTS intruder").strip() == "0"


MASKED = """\
data:
  dumps:
    - container: pg
      engine: postgres
      database: shop
      mask:
        - UPDATE users SET email = 'user' || id || '@example.invalid'
        - {rule}
  backup_dir: /var/lib/ferryman/masked-backups
"""
PSQL = "docker exec -u postgres pg psql -tAq -d shop -c"


def test_masked_copy_leaves_no_original_email(lab3: Demo) -> None:
    """TEST plays STAGING here: policy masked, fed from PROD's PostgreSQL."""
    for role in ("prod", "test"):
        sh(lab3, role, f"docker run -d --name pg {db_image_on(lab3, role)} postgres >/dev/null")
        wait_for(lab3, role, "docker exec -u postgres pg psql -tAq -c 'select 1'", "1")
        sh(lab3, role, "docker exec -u postgres pg createdb shop")
    sh(lab3, "prod", f"{PSQL} \"create table users(id int primary key, email text, name text); "
       "insert into users select n, 'customer' || n || '@shop.example', 'name ' || n "
       "from generate_series(1, 500) n\"")
    sh(lab3, "test", f"{PSQL} \"create table users(id int primary key, email text, name text); "
       "insert into users values (1, 'tester@staging.example', 'staging')\"")
    staging = "policy:\n      masked: true\n"
    base = (lab3.config.parent / "base.yml").read_text()

    def config(rule: str) -> None:
        lab3.config.write_text(base.replace("  prod:\n", f"    {staging}  prod:\n", 1)
                               + MASKED.format(rule=rule))

    config("UPDATE users SET name = 'someone'")
    unmasked = cli(lab3, "sync-data", "prod", "test", "--yes")
    assert unmasked.code == 2 and "takes masked data only" in unmasked.err, unmasked.err

    # A rule that fails: the apply swaps back, TEST keeps its own data.
    config("UPDATE no_such_table SET x = 1")
    bad = cli(lab3, "sync-data", "prod", "test", "--mask", "--yes")
    assert bad.code == 1, bad.err
    assert "FAILED step" in bad.err and "mask pg/shop on test-1" in bad.err
    assert "no_such_table" in bad.err
    assert sh(lab3, "test", f"{PSQL} 'select email from users'").split() == [
        "tester@staging.example"]
    assert sh(lab3, "test", "ls /var/lib/ferryman/masked-backups/shop/ | grep '^b' || true") == ""

    config("UPDATE users SET name = 'someone'")
    good = cli(lab3, "sync-data", "prod", "test", "--mask", "--yes")
    assert good.code == 0, good.err
    assert sh(lab3, "test", f"{PSQL} 'select count(*) from users'").strip() == "500"
    assert sh(lab3, "test", f"{PSQL} \"select count(*) from users where email like "
              "'%shop.example%' or name like 'name %'\"").strip() == "0"
    assert sh(lab3, "test", f"{PSQL} \"select email from users where id = 7\"").strip() == \
        "user7@example.invalid"
    # The copy kept on TEST: masked, and its manifest says by which rules.
    (copy,) = [m for m in cli(lab3, "backups", "test", "--json").json() if m["kind"] == "sync"]
    assert copy["masked"]["pg/shop"][0].startswith("UPDATE users SET email")
    text = sh(lab3, "test", f"for f in /var/lib/ferryman/masked-backups/shop/{copy['id']}/dump-*; "
              "do case $f in *.zst) zstd -dc $f;; *.gz) gzip -dc $f;; esac; done | "
              "docker exec -i -u postgres pg pg_restore -f - | grep -c shop.example",
              check=False)
    assert text.strip() == "0"
    assert cli(lab3, "backup", "verify", "test", copy["id"]).code == 0
    # An unmasked backup of PROD is refused on TEST by restore too, before it is uploaded.
    got = cli(lab3, "backup", "prod", "--download", str(lab3.config.parent / "copies"))
    assert got.code == 0, got.err
    (folder,) = (lab3.config.parent / "copies").iterdir()
    refused = cli(lab3, "restore", "test", "--from-file", str(folder), "--yes")
    assert refused.code == 2 and "not masked" in refused.err, refused.err
    assert folder.name not in sh(lab3, "test", "ls /var/lib/ferryman/masked-backups/shop/")


RESTIC = """\
data:
  volumes: [shopdata]
  paths: [/srv/shop/files]
  stop: [web, shop-api]
  restic:
    repository: "sftp:vault:/srv/restic/shop"
    password_file: /root/restic.pass
    check_subset: 1/1
"""


def test_restic_backs_up_folders_to_the_vault_and_restores_them(lab3: Demo) -> None:
    configure(lab3, RESTIC)
    trust(lab3.lab, lab3.hosts["prod"], lab3.hosts["vault"], "vault")
    sh(lab3, "prod", "echo not-a-real-secret > /root/restic.pass")
    before = tree(lab3)
    first = cli(lab3, "backup", "prod")
    assert first.code == 0, first.err
    assert "restic snapshot" in first.err
    (snap,) = cli(lab3, "backups", "prod", "--json").json()
    assert snap["kind"] == "restic" and "/srv/shop/files" in snap["source"]
    # The repository lies on the vault, as restic's own files.
    assert sh(lab3, "vault", "ls /srv/restic/shop").split() == [
        "config", "data", "index", "keys", "locks", "snapshots"]
    checked = cli(lab3, "backup", "verify", "prod", snap["id"])
    assert checked.code == 0, checked.err
    assert "read-data-subset=1/1: no errors" in checked.out

    sh(lab3, "prod", "echo changed > /srv/shop/files/a.bin && rm -rf /srv/shop/files/sub && "
       "echo 1 > /var/lib/docker/volumes/shopdata/_data/new")
    assert tree(lab3) != before
    back = cli(lab3, "restore", "prod", snap["id"], "--yes")
    assert back.code == 0, back.err
    assert tree(lab3) == before
    assert sh(lab3, "prod", "ls -d /srv/shop/files.ferryman-* "
              "/var/lib/docker/volumes/shopdata/_data.ferryman-* 2>/dev/null || true") == ""
    assert "safety snapshot" in back.err
    # Scheduled: the pass backs up into the repository and checks it.
    configure(lab3, RESTIC + 'schedules:\n  prod: {backup: "0 3 * * *", verify: "0 4 * * *"}\n')
    sh(lab3, "prod", "rm -f /var/lib/ferryman/shop/schedules.jsonl")
    ran = passes(lab3)
    assert ran["backup"]["result"] == "ok" and ran["verify"]["result"] == "ok", ran
    assert "no errors" in ran["verify"]["said"]
    snaps = cli(lab3, "backups", "prod", "--json").json()
    ids = [x["id"] for x in snaps]  # the backup, the restore's safety snapshot, the new one
    assert ids[0] == snap["id"] and ids[1].startswith("s") and ids[2:] == [ran["backup"]["id"]]
    # A damaged pack is found by the check.
    sh(lab3, "vault", "for f in $(find /srv/restic/shop/data -type f); do "
       "printf XXXX | dd of=$f bs=1 seek=50 conv=notrunc 2>/dev/null; done")
    bad = cli(lab3, "backup", "verify", "prod", snap["id"])
    assert bad.code != 0


S3 = """\
data:
  volumes: [shopdata]
  paths: [/srv/shop/files]
  stop: [web, shop-api]
  backup_dir: /var/lib/ferryman/s3-backups
  offsite:
    keep: 3
    s3: {{bucket: offsite, prefix: copies, endpoint: "http://127.0.0.1:{port}",
         access_key: "${{S3_KEY}}", secret_key: "${{S3_SECRET}}", part_mb: 5}}
schedules:
  prod: {{backup: "0 3 * * *", offsite: true}}
"""


@pytest.fixture()
def s3_server() -> Iterator[int]:
    """An S3 server on 127.0.0.1 for this test alone (moto), with an empty bucket."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                     aws_access_key_id="k", aws_secret_access_key="s").create_bucket(
                         Bucket="offsite")
        yield port
    finally:
        server.stop()


def test_s3_offsite_copy_and_restore_from_it(lab3: Demo, s3_server: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("S3_KEY", "k")
    monkeypatch.setenv("S3_SECRET", "s")
    configure(lab3, S3.format(port=s3_server))
    sh(lab3, "prod", "head -c 12000000 /dev/urandom > /srv/shop/files/big.bin")  # 3 parts
    sh(lab3, "prod", "rm -f /var/lib/ferryman/shop/schedules.jsonl")
    before = tree(lab3)
    ran = passes(lab3)
    assert ran["backup"]["result"] == "ok", ran
    bid = ran["backup"]["id"]
    (copy,) = cli(lab3, "backups", "prod", "--offsite", "--json").json()
    assert copy["id"] == bid
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_server}",
                      region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="offsite")["Contents"]}
    assert f"copies/shop/prod/{bid}/manifest.json" in keys
    assert f"copies/shop/prod/{bid}/path-srv_shop_files.tar.zst" in keys or \
        f"copies/shop/prod/{bid}/path-srv_shop_files.tar.gz" in keys

    sh(lab3, "prod", f"rm -rf /var/lib/ferryman/s3-backups/shop/{bid} && "
       "echo changed > /srv/shop/files/big.bin")
    back = cli(lab3, "restore", "prod", bid, "--from-offsite", "--yes")
    assert back.code == 0, back.err
    assert tree(lab3) == before
    # A backup typed by hand goes off-site too when asked.
    by_hand = cli(lab3, "backup", "prod", "--offsite")
    assert by_hand.code == 0, by_hand.err
    copies = [c["id"] for c in cli(lab3, "backups", "prod", "--offsite", "--json").json()]
    assert len(copies) == 2 and copies[0] == bid
