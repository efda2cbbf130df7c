"""Which layers a target holds and which tar members may stay on the source, on data captured
from a Docker 20.10 engine (tests/unit/data/layers/README.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fakehost import Reply, ScriptedHost

from ferryman.docker import images as di
from ferryman.docker import layers as dl
from ferryman.flows.transfer import ImageToSend, LayerTransfer, Prepared

DATA = Path(__file__).parent / "data" / "layers"
L3 = json.loads((DATA / "l3.diff_ids.json").read_text())
L2 = json.loads((DATA / "l2.diff_ids.json").read_text())
LAYERDB = {f"sha256:{line.strip()}" for line in (DATA / "layerdb.txt").read_text().split()}
MANIFEST = (DATA / "l3.manifest.json").read_text()
PATHS = json.loads(MANIFEST)[0]["Layers"]


def test_chain_ids_are_the_engines_own() -> None:
    chains = dl.chain_ids(L3)
    assert chains[0] == L3[0]  # the base layer's ChainID is its DiffID
    assert all(c in LAYERDB for c in chains)  # the engine keeps each layer under its ChainID
    assert len(set(chains)) == 3


def test_what_a_target_holds_is_read_from_every_images_layers() -> None:
    out = "\n".join(json.dumps(d) for d in (L2, ["sha256:" + "0" * 64]))
    have = dl.parse_all_layers(out + "\nnot json\n")
    assert have == set(dl.chain_ids(L2)) | {"sha256:" + "0" * 64}


def test_a_target_with_the_previous_version_needs_only_the_top_layer() -> None:
    have = set(dl.chain_ids(L2))
    skip = dl.legacy_skip([L3], have, MANIFEST)
    assert skip.members == sorted(PATHS[:2]) and (skip.layers, skip.kept) == (2, 1)
    oci = dl.oci_skip([L3], have)
    assert oci.members == sorted(f"blobs/sha256/{d.split(':')[1]}" for d in L3[:2])


def test_a_layer_shared_by_content_but_not_by_base_is_sent() -> None:
    """The same DiffID on another base has another ChainID: the target lacks that layer."""
    other_base = ["sha256:" + "1" * 64, L3[1]]
    have = set(dl.chain_ids(other_base))
    skip, need = dl.skippable([L3], have)
    assert skip == set() and need == set(L3)


def test_a_layer_one_image_needs_is_kept_for_all_images_in_the_tar() -> None:
    twin = [L3[0], L3[1], L3[0]]  # L3[0] again on top: its own ChainID, which TO lacks
    have = set(dl.chain_ids(L2))
    skip, need = dl.skippable([L3, twin], have)
    assert L3[0] in need and L3[0] not in skip and skip == {L3[1]}
    # In a legacy tar the top copy is a link to the first: both stay.
    manifest = json.dumps([{"Config": "a.json", "Layers": PATHS},
                           {"Config": "b.json", "Layers": [PATHS[0], PATHS[1], "x/layer.tar"]}])
    members = dl.legacy_skip([L3, twin], have, manifest).members
    assert members == [PATHS[1]] and PATHS[0] not in members


def test_legacy_paths_below_the_top_are_computed_as_the_engine_names_them() -> None:
    assert dl.v1_paths(L3) == [*PATHS[:2], None]
    assert dl.v1_paths(L3[:1]) == [None] and dl.v1_paths([]) == []
    have = set(dl.chain_ids(L2))
    assert dl.computed_skip([L3], have) == dl.legacy_skip([L3], have, MANIFEST)
    # TO holds all of l3's layers under another image (a config-only change): the top layer's
    # path is not computable, so it goes; the layers below stay on the source.
    full = dl.computed_skip([L3], set(dl.chain_ids(L3)))
    assert full.members == sorted(PATHS[:2]) and (full.layers, full.kept) == (2, 1)


@pytest.mark.parametrize(("local", "go"), [
    ("1970-01-01T00:00:00+00:00", "1970-01-01T00:00:00Z"),
    ("1970-01-01T01:00:00+01:00", "1970-01-01T01:00:00+01:00"),  # Europe/London in 1970
    ("1969-12-31T19:00:00-05:00", "1969-12-31T19:00:00-05:00"),
    ("", None), ("Thu Jan  1 00:00:00 UTC 1970", None),  # no GNU date
])
def test_the_epoch_is_written_as_go_writes_it_in_the_hosts_zone(local: str, go: str | None
                                                                ) -> None:
    assert dl.go_epoch(local) == go
    facts = dl.parse_host_facts(f"server 20.10.24+dfsg1\nepoch {local}\n")
    assert facts.epoch == go and facts.computable_paths == (go is not None)


def test_paths_are_computed_only_where_checked() -> None:
    epoch = "\nepoch 1970-01-01T00:00:00+00:00\n"
    for version, ok in (("20.10.24+dfsg1", True), ("19.03.15", False), ("1.13.1", False),
                        ("24.0.7", False), ("26.1.5+dfsg1", False)):
        assert dl.parse_host_facts(f"server {version}{epoch}").computable_paths is ok, version
    # Another zone names other paths: a layer's v1id hashes its creation time as written.
    assert dl.v1_paths(L3, "1970-01-01T01:00:00+01:00")[:2] != PATHS[:2]


def test_a_manifest_that_does_not_match_the_images_is_refused() -> None:
    with pytest.raises(ValueError, match="lists 3 layers"):
        dl.legacy_skip([L3[:2]], set(), MANIFEST)


@pytest.mark.parametrize(("stdout", "docker", "containerd", "gnu", "oci"), [
    ('server 20.10.24+dfsg1\nstatus [["Backing Filesystem","extfs"]]\ntar (GNU tar) 1.34\n',
     "20.10.24+dfsg1", False, True, False),
    ('server 26.1.5+dfsg1\nstatus [["Backing Filesystem","extfs"]]\ntar (GNU tar) 1.35\n',
     "26.1.5+dfsg1", False, True, True),
    # The containerd store's status is moby's LayerStoreStatus (moby/moby#43983).
    ('server 29.0.1\nstatus [["driver-type","io.containerd.snapshotter.v1"]]\n'
     "tar (busybox) 1.36\n", "29.0.1", True, False, True),
])
def test_host_facts(stdout: str, docker: str, containerd: bool, gnu: bool, oci: bool) -> None:
    f = dl.parse_host_facts(stdout)
    assert (f.docker, f.containerd_store, f.gnu_tar, f.oci_save) == (docker, containerd, gnu,
                                                                        oci)


def _hosts(dst_facts: str, src_facts: str = "") -> tuple[ScriptedHost, ScriptedHost]:
    legacy = ('server 20.10.24+dfsg1\nstatus [["Backing Filesystem","extfs"]]\n'
              "tar (GNU tar) 1.34\nepoch 1970-01-01T00:00:00+00:00\n")
    src = ScriptedHost("test-1").on(di.compressors(), Reply(0, "zstd\ngzip\n"))
    src.on(dl.host_facts(), Reply(0, src_facts or legacy))
    src.on(dl.legacy_manifest(["app:v3"]), Reply(0, MANIFEST))
    dst = ScriptedHost("prod-1").on(di.compressors(), Reply(0, "zstd\n"))
    dst.on(dl.host_facts(), Reply(0, dst_facts or legacy))
    dst.on(dl.all_layers(), Reply(0, json.dumps(L2) + "\n"))
    return src, dst


IMG = ImageToSend("app:v3", "sha256:" + "3" * 64, 2_012_160, L3)


def _prepare(src: ScriptedHost, dst: ScriptedHost) -> Prepared:
    return asyncio.run(LayerTransfer().prepare(src, dst, [IMG]))  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["20.10.24+dfsg1", "24.0.7"])
def test_the_transfer_leaves_out_what_the_target_has_and_the_plan_says_so(version: str) -> None:
    """20.10: the paths are computed, FROM's tar is read once; 24: read from its manifest."""
    facts = (f'server {version}\nstatus [["Backing Filesystem","extfs"]]\ntar (GNU tar) 1.34\n'
             "epoch 1970-01-01T00:00:00+00:00\n")
    src, dst = _hosts("", facts)
    p = asyncio.run(LayerTransfer().prepare(src, dst, [IMG]))  # type: ignore[arg-type]
    assert len(src.ran_matching(*dl.legacy_manifest(["app:v3"]))) == (version[:2] == "24")
    assert p.skip is not None and p.skip.members == sorted(PATHS[:2])
    assert p.source_argv == di.save_without(["app:v3"], "zstd", sorted(PATHS[:2]))
    assert p.whole() == di.save(["app:v3"], "zstd")
    assert "leaves out 2 layer(s) prod-1 has" in p.lines()[-1]


@pytest.mark.parametrize(("dst_facts", "src_facts", "why"), [
    ('server 29.0.1\nstatus [["driver-type","io.containerd.snapshotter.v1"]]\n'
     "tar (GNU tar) 1.35\n", "", "prod-1 uses the containerd image store"),
    ("", "server 20.10.24\nstatus []\ntar (busybox) 1.36\n", "test-1 has no GNU tar"),
])
def test_where_a_partial_load_cannot_work_the_whole_image_goes_and_the_plan_says_why(
        dst_facts: str, src_facts: str, why: str) -> None:
    p = _prepare(*_hosts(dst_facts, src_facts))
    assert p.skip is None and p.source_argv == di.save(["app:v3"], "zstd")
    assert p.whole_because is not None and p.whole_because.startswith(why)


def test_a_source_serving_several_targets_is_asked_once() -> None:
    """Planning a release to three hosts: FROM's tools, facts and (Docker 23, 24) its tar's
    layer names, a whole local `docker save`, are read once, not once per target."""
    src, _ = _hosts("", 'server 24.0.7\nstatus []\ntar (GNU tar) 1.34\n')
    dsts = [_hosts("")[1] for _ in range(3)]
    transfer = LayerTransfer()

    async def plan() -> list[Prepared]:
        return [await transfer.prepare(src, d, [IMG]) for d in dsts]  # type: ignore[arg-type]

    prepared = asyncio.run(plan())
    assert {tuple(p.source_argv) for p in prepared} == {
        tuple(di.save_without(["app:v3"], "zstd", sorted(PATHS[:2])))}
    assert len(src.ran_matching(*dl.legacy_manifest(["app:v3"]))) == 1
    assert len(src.ran_matching(*dl.host_facts())) == 1
    assert len(src.ran_matching(*di.compressors())) == 1
