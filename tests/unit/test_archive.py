"""Archive scripts and manifests, run here with the same POSIX tools a server has."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from ferryman.data import archive as ar


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True)


def test_pack_unpack_round_trip_counts_and_digest(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a b").mkdir(parents=True)
    (src / "a b" / "x.txt").write_text("hello")
    (src / "y.bin").write_bytes(bytes(range(256)) * 10)
    out = tmp_path / "backups/b1/path-src.tar.gz"
    res = run(ar.pack(str(src), str(out), "gzip"))
    assert res.returncode == 0, res.stderr
    files, size, sha, archive = ar.parse_pack(res.stdout)
    assert (files, size) == (2, 5 + 2560)
    assert sha == hashlib.sha256(out.read_bytes()).hexdigest()
    assert archive == out.stat().st_size
    dest = tmp_path / "dest"
    res = run(ar.unpack(str(out), str(dest), "gzip"))
    assert res.returncode == 0, res.stderr
    assert ar.parse_unpack(res.stdout) == (2, 2565)
    assert (dest / "a b" / "x.txt").read_text() == "hello"


def test_unpack_of_damaged_archive_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    res = run(ar.unpack(str(bad), str(tmp_path / "d"), "gzip"))
    assert res.returncode == 1 and "decompressor exit" in res.stderr


def test_pack_missing_folder_names_it(tmp_path: Path) -> None:
    res = run(ar.pack(str(tmp_path / "nope"), str(tmp_path / "o.tar.gz"), "gzip"))
    assert res.returncode == 66 and "no such folder" in res.stderr


def test_swap_and_unswap(tmp_path: Path) -> None:
    live, staged, old = tmp_path / "live", tmp_path / "live.new", tmp_path / "live.old"
    live.mkdir()
    (live / "v").write_text("old")
    staged.mkdir()
    (staged / "v").write_text("new")
    assert run(ar.swap(str(live), str(staged), str(old))).returncode == 0
    assert (live / "v").read_text() == "new" and (old / "v").read_text() == "old"
    assert run(ar.unswap(str(live), str(staged), str(old))).returncode == 0
    assert (live / "v").read_text() == "old" and not old.exists()
    # A live folder that did not exist before: swap creates it, unswap removes it again.
    fresh, fresh_new = tmp_path / "fresh", tmp_path / "fresh.new"
    fresh_new.mkdir()
    assert run(ar.swap(str(fresh), str(fresh_new), str(tmp_path / "fresh.old"))).returncode == 0
    assert fresh.exists()
    assert run(ar.unswap(str(fresh), str(fresh_new), str(tmp_path / "fresh.old"))).returncode == 0
    assert not fresh.exists()
    # Cut before the swap began (an abort from a journal): live keeps the old data.
    again = tmp_path / "again"
    again.mkdir()
    (again / "v").write_text("old")
    (tmp_path / "again.new").mkdir()
    assert run(ar.unswap(str(again), str(tmp_path / "again.new"),
                         str(tmp_path / "again.old"))).returncode == 0
    assert (again / "v").read_text() == "old" and (tmp_path / "again.new").exists()
    # Cut between its two moves: live was set aside, the new data not yet in place.
    (tmp_path / "again.new" / "v").write_text("new")
    again.rename(tmp_path / "again.old")
    assert run(ar.unswap(str(again), str(tmp_path / "again.new"),
                         str(tmp_path / "again.old"))).returncode == 0
    assert (again / "v").read_text() == "old" and not (tmp_path / "again.old").exists()


def test_manifest_round_trip_and_listing() -> None:
    m = ar.Manifest("b20261123-101500", "shop", "test", "test-1", "2026-11-23T10:15:00+00:00",
                    "zstd", "0.1.0", items=[ar.Item("dump", "pg/shop", "dump-pg_shop.postgres.zst",
                                                    1, 10, "ab", 5, engine="postgres")])
    again = ar.Manifest.parse(m.to_json())
    assert again == m and again.items[0].container == "pg" and again.items[0].database == "shop"
    assert ar.archive_name(ar.Item("volume", "shop data"), "zstd") == "volume-shop_data.tar.zst"
    listed = ar.parse_manifests(m.to_json() + "\x1e" + "{broken" + "\x1e")
    assert [x.id for x in listed] == [m.id]
    assert ar.ID_PATTERN.match("b20261123-101500") and not ar.ID_PATTERN.match("../etc")


def test_retention_keeps_newest_and_recent() -> None:
    from datetime import UTC, datetime

    def m(day: int) -> ar.Manifest:
        return ar.Manifest(f"b202611{day:02d}-000000", "p", "e", "h",
                           f"2026-11-{day:02d}T00:00:00+00:00", "zstd", "")

    backups = [m(d) for d in (1, 5, 10, 20, 21, 22)]
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert [x.id[:9] for x in ar.beyond_retention(backups, 2, None, now)] == [
        "b20261101", "b20261105", "b20261110", "b20261120"]
    # 14 days also keep the one of the 10th; older ones still go.
    assert [x.id[:9] for x in ar.beyond_retention(backups, 2, 14, now)] == [
        "b20261101", "b20261105"]
    assert ar.beyond_retention(backups[:2], 7, None, now) == []


def test_dump_and_load_commands_exact_argv() -> None:
    pg = ar.Item("dump", "pg/shop", engine="postgres", user="app")
    assert ar.dump_command(pg) == ["docker", "exec", "-u", "postgres", "pg", "pg_dump",
                                   "-U", "app", "-Fc", "shop"]
    assert ar.load_command(pg) == ["docker", "exec", "-i", "-u", "postgres", "pg", "pg_restore",
                                   "-U", "app", "-d", "shop", "--clean", "--if-exists",
                                   "--no-owner", "--single-transaction"]
    my = ar.Item("dump", "maria/shop", engine="mysql")
    dump, load = ar.dump_command(my), ar.load_command(my)
    assert dump[:5] == ["docker", "exec", "maria", "sh", "-c"]
    assert dump[6:] == ["ferryman-dump", "root", "shop", "mysqldump", "--single-transaction",
                        "--routines", "--triggers"]
    assert load[:6] == ["docker", "exec", "-i", "maria", "sh", "-c"]
    assert load[7:] == ["ferryman-load", "root", "shop", "mysql"]
