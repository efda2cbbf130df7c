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


def test_digests_match_with_openssl_and_without(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b c"
    a.write_bytes(b"x" * 100000)
    b.write_bytes(b"")
    want = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}
    # Without OpenSSL: a PATH holding only the coreutils the script needs.
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "sha256sum", "cut"):
        (bare / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    for env in (None, {"PATH": str(bare)}):
        res = subprocess.run(ar.sha256([str(a), str(b), str(tmp_path / "gone")]),
                             capture_output=True, text=True, env=env)
        assert res.returncode == 1  # the missing file
        assert ar.parse_sha256(res.stdout) == want


def test_follow_and_receive_carry_an_archive_while_it_is_written(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(200):
        (src / "d" / f"f{i}").write_bytes(bytes([i]) * (i * 97))
    out, copy, dest = (tmp_path / "b/a.tar.zst", tmp_path / "c/a.tar.zst",
                       tmp_path / "live.ferryman-new")
    # The reader starts first and waits for the writer, as sync-data starts them.
    follow = subprocess.Popen(ar.follow_archive(str(out)), stdout=subprocess.PIPE)
    take = subprocess.Popen(ar.receive(str(copy), str(dest), "gzip"), stdin=follow.stdout,
                            stdout=subprocess.PIPE, text=True)
    packed = run(ar.pack(str(src), str(out), "gzip", follow=True))
    assert packed.returncode == 0, packed.stderr
    got, _ = take.communicate(timeout=30)
    assert follow.wait(timeout=5) == 0 and take.returncode == 0
    assert ar.parse_pack(got) == ar.parse_pack(packed.stdout)  # files, bytes, sha, size
    assert copy.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in (dest / "d").iterdir()) == sorted(
        p.name for p in (src / "d").iterdir())
    assert not list(out.parent.glob("*.p*")) and not list(out.parent.glob("*.following"))


def test_receive_of_a_cut_stream_fails_and_keeps_no_archive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_bytes(bytes(range(256)) * 4000)
    out = tmp_path / "a.tar.gz"
    assert run(ar.pack(str(src), str(out), "gzip")).returncode == 0
    cut = out.read_bytes()[: out.stat().st_size // 2]
    copy = tmp_path / "c/a.tar.gz"
    res = subprocess.run(ar.receive(str(copy), str(tmp_path / "dest"), "gzip"), input=cut,
                         capture_output=True)
    assert res.returncode == 1
    assert not copy.exists() and not copy.with_name(copy.name + ".part").exists()
