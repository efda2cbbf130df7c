"""What data steps will run, planned once: the argv a step runs is the line the dry run
prints, and the typed state the steps hand on."""

from __future__ import annotations

import pytest

from ferryman.data import archive as ar
from ferryman.flows.data.plan import (
    DataState,
    Staging,
    lines,
    plan_snapshot,
    remove,
    skeleton,
)
from ferryman.flows.proxy import target_path

ITEMS = [ar.Item("dump", "pg/shop", engine="postgres", user="app"),
         ar.Item("volume", "shopdata"), ar.Item("path", "/srv/shop/files")]
FOLDERS = {"shopdata": "/var/lib/docker/volumes/shopdata/_data",
           "/srv/shop/files": "/srv/shop/files"}


def test_snapshot_plan_is_one_argv_per_item_from_the_archive_builders() -> None:
    p = plan_snapshot("b20260101-000000", "backup", "/bk/shop/b20260101-000000", "zstd",
                      ITEMS, FOLDERS)
    assert [i.archive for i in p.items] == [
        "dump-pg_shop.postgres.zst", "volume-shopdata.tar.zst", "path-srv_shop_files.tar.zst"]
    assert p.argvs == [
        ar.dump(p.items[0], "/bk/shop/b20260101-000000/dump-pg_shop.postgres.zst", "zstd"),
        ar.pack("/var/lib/docker/volumes/shopdata/_data",
                "/bk/shop/b20260101-000000/volume-shopdata.tar.zst", "zstd"),
        ar.pack("/srv/shop/files", "/bk/shop/b20260101-000000/path-srv_shop_files.tar.zst",
                "zstd"),
    ]
    assert p.manifest_path == "/bk/shop/b20260101-000000/manifest.json"
    assert p.archive("shopdata") == "/bk/shop/b20260101-000000/volume-shopdata.tar.zst"
    assert p.archive("nothing") is None
    # The wanted items are not changed by planning.
    assert ITEMS[1].archive == ""


def test_dry_run_lines_are_the_argvs_with_inline_scripts_cut_to_their_name() -> None:
    p = plan_snapshot("b1", "backup", "/bk/b1", "gzip", ITEMS[1:2], FOLDERS)
    assert lines(p.argvs) == [
        "ferryman-pack /var/lib/docker/volumes/shopdata/_data /bk/b1/volume-shopdata.tar.gz "
        "'gzip -1 -c'"]
    assert lines([remove(["/a b"])]) == ["rm -rf -- '/a b'"]


def test_skeleton_has_the_plan_ids_and_archives_but_no_counts() -> None:
    p = plan_snapshot("b1", "backup", "/bk/b1", "gzip", ITEMS, FOLDERS)
    m = skeleton(p, "shop", "test", "test-1")
    assert (m.id, m.compression, m.env, m.host) == ("b1", "gzip", "test", "test-1")
    assert [(i.kind, i.name, i.archive) for i in m.items] == [
        (i.kind, i.name, i.archive) for i in p.items]
    assert all(i.files == 0 and i.sha256 == "" for i in m.items)
    assert m.items[0].engine == "postgres" and m.items[0].user == "app"


def test_staging_paths_and_argvs() -> None:
    st = Staging(ITEMS[2], "/bk/b1/path-srv_shop_files.tar.gz", "/srv/shop/files", "r1")
    assert st.paths() == ("/srv/shop/files", "/srv/shop/files.ferryman-new",
                          "/srv/shop/files.ferryman-old-r1")
    assert st.unpack("gzip") == [
        ["mkdir", "-p", "--", "/srv/shop"],
        ar.unpack("/bk/b1/path-srv_shop_files.tar.gz", "/srv/shop/files.ferryman-new", "gzip")]
    assert st.swap() == ar.swap("/srv/shop/files", "/srv/shop/files.ferryman-new",
                                "/srv/shop/files.ferryman-old-r1")
    assert st.unswap() == ar.unswap("/srv/shop/files", "/srv/shop/files.ferryman-new",
                                    "/srv/shop/files.ferryman-old-r1")


def test_staging_of_a_volume_not_there_yet_names_it_until_it_is_known() -> None:
    st = Staging(ITEMS[1], "/bk/b1/volume-shopdata.tar.gz", None, "r1")
    assert st.unpack("gzip") == [ar.unpack("/bk/b1/volume-shopdata.tar.gz",
                                           "<volume shopdata>.ferryman-new", "gzip")]
    live = "/var/lib/docker/volumes/shopdata/_data"
    assert st.swap(live) == ar.swap(live, f"{live}.ferryman-new", f"{live}.ferryman-old-r1")


def test_state_hands_on_the_applied_counts() -> None:
    state = DataState()
    with pytest.raises(RuntimeError):
        state.applied_item("shopdata")
    m = ar.Manifest("b1", "shop", "test", "test-1", "", "gzip", "",
                    items=[ar.Item("volume", "shopdata", files=3, bytes=30)])
    state.applied = m
    assert state.applied_item("shopdata").files == 3
    assert state.snapshot is None and state.safety is None and state.live == {}


def test_proxy_target_path() -> None:
    assert target_path("shop", "a.test", "/usr/sbin/nginx", ["/etc/nginx/conf.d"]) == \
        "/etc/nginx/conf.d/a.test.conf"
    assert target_path("shop", "a.test", None, ["/etc/nginx/conf.d"]) == \
        "/var/lib/ferryman/shop/nginx/a.test.conf"
    assert target_path("shop", "a.test", "/usr/sbin/nginx", []) == \
        "/var/lib/ferryman/shop/nginx/a.test.conf"
    assert target_path("shop", "a.test", None, [], "/x/y.conf") == "/x/y.conf"
