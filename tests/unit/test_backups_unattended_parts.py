"""Backups that run themselves, the pure parts: cron times, which scheduled jobs are due,
retention around verified backups, the units that run a pass, the keys in ferryman.yml, and
the exact argv of the Redis, masking and restic commands."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferryman.config import ConfigError, load_config
from ferryman.data import archive as ar
from ferryman.schedule import cron
from ferryman.schedule import due as sd
from ferryman.schedule.install import units


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cron_fields_and_last_fire() -> None:
    daily = cron.parse("30 2 * * *")
    assert daily.last_fire(at("2026-12-01T04:00")) == at("2026-12-01T02:30")
    assert daily.last_fire(at("2026-12-01T02:29:59")) == at("2026-11-30T02:30")
    assert daily.last_fire(at("2026-12-01T02:30:40")) == at("2026-12-01T02:30")
    # 2026-11-29 is a Sunday; 7 is Sunday too.
    assert cron.parse("0 4 * * 0").last_fire(at("2026-12-01T04:00")) == at("2026-11-29T04:00")
    assert cron.parse("0 4 * * 7").last_fire(at("2026-12-01T04:00")) == at("2026-11-29T04:00")
    assert cron.parse("@weekly").last_fire(at("2026-12-01T04:00")) == at("2026-11-29T00:00")
    assert cron.parse("*/20 9-17 * * mon-fri").last_fire(at("2026-11-28T12:00")) == \
        at("2026-11-27T17:40")
    # Both day fields restricted: either matching fires (crontab(5)).
    either = cron.parse("0 0 1 * mon")
    assert either.last_fire(at("2026-12-01T12:00")) == at("2026-12-01T00:00")  # the 1st
    assert either.last_fire(at("2026-11-30T12:00")) == at("2026-11-30T00:00")  # a Monday
    assert len(cron.parse("*/15 * * * *").fires_between(at("2026-11-30T00:00"),
                                                        at("2026-12-01T00:00"))) == 96


@pytest.mark.parametrize("text", ["30 2 * *", "61 * * * *", "* 24 * * *", "* * 0 * *",
                                  "* * * 13 *", "*/0 * * * *", "a * * * *", "5-1 * * * *"])
def test_bad_cron_times_are_refused(text: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(text)


def test_a_time_that_never_comes_is_refused() -> None:
    with pytest.raises(cron.CronError):
        cron.parse("0 0 31 2 *").last_fire(at("2026-12-01T00:00"))


def run(job: str, due: str, result: sd.Result = "ok") -> sd.Run:
    return sd.Run("prod", job, at(due).isoformat(), at(due).isoformat(), result)


def test_never_run_is_due_at_once_and_done_after() -> None:
    now = at("2026-12-01T04:00")
    d = sd.due("prod", "backup", "30 2 * * *", [], now)
    assert d.run and d.first and d.due == at("2026-12-01T02:30") and not d.missed
    done = [run("backup", "2026-12-01T02:30")]
    assert not sd.due("prod", "backup", "30 2 * * *", done, now).run
    # Other jobs and environments are their own.
    assert sd.due("prod", "drill", "30 2 * * *", done, now).run
    assert sd.due("test", "backup", "30 2 * * *", done, now).run


def test_missed_runs_are_counted_and_run_once() -> None:
    runs = [run("backup", "2026-11-27T02:30"), run("backup", "2026-11-20T02:30")]
    d = sd.due("prod", "backup", "30 2 * * *", runs, at("2026-12-01T04:00"))
    assert d.run and d.due == at("2026-12-01T02:30") and d.last == at("2026-11-27T02:30")
    assert d.missed == [at("2026-11-30T02:30"), at("2026-11-29T02:30"), at("2026-11-28T02:30")]
    assert "missed 3 run(s) since 2026-11-28 02:30 UTC" in d.missed_text()


def test_a_skipped_run_settles_nothing_a_failed_one_does() -> None:
    now = at("2026-12-01T04:00")
    skipped = [run("backup", "2026-12-01T02:30", "skipped")]
    assert sd.due("prod", "backup", "30 2 * * *", skipped, now).run
    failed = [run("backup", "2026-12-01T02:30", "failed")]
    assert not sd.due("prod", "backup", "30 2 * * *", failed, now).run
    assert sd.already_settled(failed, "prod", "backup", at("2026-12-01T02:30"))
    assert not sd.already_settled(skipped, "prod", "backup", at("2026-12-01T02:30"))


def test_runs_parse_and_skip_broken_lines() -> None:
    one = run("backup", "2026-12-01T02:30")
    parsed = sd.parse_runs(one.to_json() + "\n{broken\n" + '{"env": "x"}\n')
    assert parsed == [one]


def backup(day: int) -> ar.Manifest:
    return ar.Manifest(f"b202611{day:02d}-000000", "p", "e", "h",
                       f"2026-11-{day:02d}T00:00:00+00:00", "zstd", "")


def ids(found: list[ar.Manifest]) -> list[str]:
    return [m.id[7:9] for m in found]


def test_retention_never_counts_a_failed_backup_and_keeps_the_newest_verified() -> None:
    backups = [backup(d) for d in (1, 5, 10, 20, 21, 22)]
    now = at("2026-11-23T00:00")
    checks: dict[str, dict[str, object]] = {
        backups[1].id: {"ok": True},  # the 5th: verified
        backups[5].id: {"ok": False},  # the 22nd: failed
    }
    # keep=2 counts the 21st and 20th (not the failed 22nd, which stays flagged), and the
    # 5th stays as the newest verified one.
    assert ids(ar.beyond_retention(backups, 2, None, now, checks)) == ["01", "10"]
    # Without checks: the newest two.
    assert ids(ar.beyond_retention(backups, 2, None, now)) == ["01", "05", "10", "20"]
    # A failed backup older than the counted ones goes.
    checks[backups[2].id] = {"ok": False}
    assert "10" in ids(ar.beyond_retention(backups, 2, None, now, checks))
    assert ar.failed_checks(checks) == {backups[5].id, backups[2].id}


def test_units_quote_paths_and_run_every_minute() -> None:
    u = units("/opt/py/bin/python3", "/srv/my ops/ferryman.yml", "/srv/my ops")
    assert u.crontab == ("* * * * * cd '/srv/my ops' && /opt/py/bin/python3 -m ferryman -c "
                         "'/srv/my ops/ferryman.yml' schedule run >/dev/null 2>&1\n")
    assert ("ExecStart=/opt/py/bin/python3 -m ferryman -c '/srv/my ops/ferryman.yml' "
            "schedule run\n") in u.service
    assert "Type=oneshot" in u.service and "OnCalendar=*-*-* *:*:00" in u.timer
    assert "%" not in units("/p", "/a%b.yml", "/").crontab.replace("\\%", "")


CONFIG = """\
project: p
environments:
  prod:
    hosts: [{address: root@10.0.0.1}]
  vault:
    hosts: [{address: root@10.0.0.2}]
"""


def load(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "ferryman.yml"
    path.write_text(CONFIG + textwrap.dedent(extra))
    return load_config(path, {})


def test_schedules_and_offsite_load(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
        data:
          volumes: [v]
          offsite: {env: vault, dir: /srv/copies, keep: 3}
        schedules:
          prod: {backup: "30 2 * * *", drill: "@weekly", offsite: true}
        """)
    assert cfg.schedules["prod"].jobs() == {"backup": "30 2 * * *", "drill": "@weekly"}
    assert cfg.data.offsite.env == "vault" and cfg.data.offsite.keep == 3


@pytest.mark.parametrize(("extra", "key", "words"), [
    ("schedules:\n  prod: {backup: '30 2 * *'}\n", "schedules.prod.backup", "cron time"),
    ("schedules:\n  stage: {backup: '@daily'}\n", "schedules.stage", "an environment name"),
    ("schedules:\n  prod: {backup: '@daily', offsite: true}\n", "schedules.prod.offsite",
     "data.offsite set"),
    ("data:\n  offsite: {env: nas}\n", "data.offsite.env", "an environment name: prod, vault"),
    ("schedules:\n  prod: {backup: '@daily', every: 3}\n", "schedules.prod.every", ""),
])
def test_bad_schedule_keys_are_named(tmp_path: Path, extra: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    found = [i for i in info.value.issues if i.key == key]
    assert found, [str(i) for i in info.value.issues]
    assert words in str(found[0])


def test_redis_dump_and_load_argv() -> None:
    item = ar.Item("dump", "cache/all", engine="redis")
    dump = ar.dump_command(item)
    assert dump[:5] == ["docker", "exec", "cache", "sh", "-c"]
    assert dump[6] == "ferryman-redis-dump" and "BGSAVE" in dump[5] and "LASTSAVE" in dump[5]
    load = ar.load_command(item)
    assert load[0:2] == ["sh", "-c"] and load[3:] == ["ferryman-redis-load", "cache"]
    assert "docker stop" in load[2] and "appendonly" in load[2]
    assert ar.archive_name(item, "zstd") == "dump-cache_all.redis.zst"


def test_redis_needs_no_database_the_others_do(tmp_path: Path) -> None:
    cfg = load(tmp_path, "data:\n  dumps: [{container: cache, engine: redis}]\n")
    assert cfg.data.dumps[0].name == "cache/all"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "data:\n  dumps: [{container: pg, engine: postgres}]\n")
    assert "a database name for engine postgres" in str(info.value)


def test_mask_sql_and_argv_per_engine() -> None:
    pg = ar.Item("dump", "pg/shop", engine="postgres", user="app")
    assert ar.mask_command(pg) == ["docker", "exec", "-i", "-u", "postgres", "pg", "psql", "-U",
                                   "app", "-d", "shop", "-v", "ON_ERROR_STOP=1",
                                   "--single-transaction", "-q", "-f", "-"]
    assert ar.mask_sql(pg, ["UPDATE u SET e = 'x';", " DELETE FROM s "]) == \
        b"UPDATE u SET e = 'x';\nDELETE FROM s;\n"
    my = ar.Item("dump", "maria/shop", engine="mysql")
    assert ar.mask_command(my)[-3:] == ["root", "shop", "mysql"]
    assert ar.mask_sql(my, ["UPDATE u SET e = 'x'"]) == (
        b"SET autocommit=0;\nSTART TRANSACTION;\nUPDATE u SET e = 'x';\nCOMMIT;\n")
    with pytest.raises(ValueError):
        ar.mask_command(ar.Item("dump", "cache/all", engine="redis"))


MASK = """\
data:
  dumps:
    - {container: pg, engine: postgres, database: shop, mask: ["UPDATE u SET e = 'x'"]}
    - {container: maria, engine: mysql, database: shop}
"""


def test_mask_rules_are_required_where_the_policy_says_masked(tmp_path: Path) -> None:
    from ferryman.errors import BadInput
    from ferryman.flows.data.mask import refuse_unmasked, rules_for

    path = tmp_path / "ferryman.yml"
    path.write_text(CONFIG.replace("root@10.0.0.2}]", "root@10.0.0.2}]\n    policy: "
                                   "{masked: true}") + MASK)
    cfg = load_config(path, {})
    with pytest.raises(BadInput, match="takes masked data only"):
        rules_for(cfg, "vault", False)
    with pytest.raises(BadInput, match=r"data.dumps\[1\] \(maria/shop\) has no mask rules"):
        rules_for(cfg, "vault", True)
    assert rules_for(cfg, "prod", False) == {}
    m = ar.Manifest("b1", "p", "prod", "h", "", "zstd", "",
                    items=[ar.Item("dump", "pg/shop", engine="postgres")])
    with pytest.raises(BadInput, match="not masked"):
        refuse_unmasked(cfg, "vault", m)
    m.masked = {"pg/shop": ["UPDATE u SET e = 'x'"]}
    refuse_unmasked(cfg, "vault", m)  # masked: taken
    refuse_unmasked(cfg, "prod", ar.Manifest("b2", "p", "vault", "h", "", "zstd", ""))
    with pytest.raises(ConfigError, match="no mask rules for redis"):
        load(tmp_path, "data:\n  dumps: [{container: c, engine: redis, mask: [x]}]\n")


def test_restic_argv_and_summary() -> None:
    from ferryman.config.backups import Restic
    from ferryman.data import restic as rc

    r = Restic(repository="sftp:vault:/srv/r", password_file="/root/p", keep=3,
               check_subset="10%")
    assert rc.backup(r, "prod", "b1", ["/srv/a b"]) == [
        "restic", "-r", "sftp:vault:/srv/r", "--password-file", "/root/p", "backup", "--json",
        "--host", "prod", "--tag", "ferryman", "--tag", "b1", "/srv/a b"]
    assert rc.check(r)[-2:] == ["check", "--read-data-subset=10%"]
    assert rc.forget(r, "prod")[-8:] == ["forget", "--host", "prod", "--tag", "ferryman",
                                         "--keep-last", "3", "--prune"]
    assert rc.init(r)[3:5] == ["ferryman-restic-init", "restic"]
    with_port = Restic(repository="sftp:x:/r", password_file="/p", sftp_command="ssh -p 2 x")
    assert rc.base(with_port)[-2:] == ["-o", "sftp.command=ssh -p 2 x"]
    out = ('{"message_type":"status"}\n{"message_type":"summary","snapshot_id":"abc",'
           '"total_files_processed":4,"total_bytes_processed":100,"data_added":7}\n')
    assert rc.Summary.parse(out) == rc.Summary("abc", 4, 100, 7)
    snaps = rc.parse_snapshots('[{"id":"abcdef0123","short_id":"abcdef01","time":"2026-12-01",'
                               '"tags":["ferryman","b1"],"paths":["/srv/a"]}]')
    assert snaps == [rc.Snapshot("abcdef01", "2026-12-01", "b1", ["/srv/a"])]
