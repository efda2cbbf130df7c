"""Which layers of an image a target already holds, and which members of a `docker save` tar
can then stay on the source.

`docker load` on the classic image store skips every layer whose ChainID it already has and
never opens that layer's file: a tar without those files loads when the target holds them.
ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).

Tar member names: Docker >= 25 writes an OCI layout whose layers are `blobs/sha256/<DiffID>`
(uncompressed, so their digest is the DiffID); earlier versions write `<v1id>/layer.tar`, named
only by the tar's own manifest.json, whose `Layers` follow the config's DiffIDs in order. Every
v1id but an image's top one is computable (`v1_paths`), which spares reading the whole image
once more just for that file. A layer repeated in one image is a symlink to its first copy
there: a file is left out only when no kept member can need it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Lists every image id on the host and, in the same round trip, the DiffIDs of each.
_ALL = ('ids=$(docker image ls -qa --no-trunc | sort -u); [ -n "$ids" ] || exit 0; '
        'docker image inspect --format "{{json .RootFS.Layers}}" $ids')
# The image store and the tools the filter needs: `docker info`'s driver status names the
# containerd snapshotter when that store is in use; GNU tar can delete members from a stream.
# The epoch in the host's local time, as Docker 20.10 (Go, local zone) writes it in the v1
# config of every layer below an image's top (v1_paths).
_FACTS = ('docker version --format "server {{.Server.Version}}" 2>/dev/null; '
          'docker info --format "status {{json .DriverStatus}}" 2>/dev/null; '
          'tar --version 2>/dev/null | head -n 1; '
          'echo "epoch $(date -d @0 +%Y-%m-%dT%H:%M:%S%:z 2>/dev/null)"; exit 0')
# A legacy (Docker < 25) tar's own manifest.json: the only place its layer paths are named.
_MANIFEST = 'docker save "$@" | tar -xOf - manifest.json'


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for diff in diff_ids:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def all_layers() -> list[str]:
    return ["sh", "-c", _ALL, "ferryman-layers"]


def parse_all_layers(stdout: str) -> set[str]:
    """The ChainIDs of every image on the host."""
    have: set[str] = set()
    for line in stdout.splitlines():
        try:
            diffs = json.loads(line)
        except ValueError:
            continue
        if isinstance(diffs, list):
            have.update(chain_ids([str(d) for d in diffs]))
    return have


def host_facts() -> list[str]:
    return ["sh", "-c", _FACTS, "ferryman-store"]


@dataclass
class HostFacts:
    docker: str = ""
    containerd_store: bool = False
    gnu_tar: bool = False
    epoch: str | None = None  # time.Unix(0, 0) as Go writes it in the host's zone

    @property
    def major(self) -> int | None:
        try:
            return int(self.docker.split(".")[0])
        except ValueError:
            return None

    @property
    def oci_save(self) -> bool:
        """`docker save` writes the OCI layout from Docker 25 on."""
        return (self.major or 0) >= 25

    @property
    def computable_paths(self) -> bool:
        """A legacy tar's layer paths follow from the DiffIDs (`v1_paths`): checked on 20.10
        (17.06 to 19.03 write the same, unchecked; 1.13 and 17.03 do not), in a zone `date`
        could name."""
        return self.docker.startswith("20.10.") and self.epoch is not None


def parse_host_facts(stdout: str) -> HostFacts:
    out = HostFacts()
    for line in stdout.splitlines():
        if line.startswith("server "):
            out.docker = line.split(" ", 1)[1].strip()
        elif line.startswith("status "):
            out.containerd_store = "io.containerd.snapshotter" in line
        elif "GNU tar" in line:
            out.gnu_tar = True
        elif line.startswith("epoch "):
            out.epoch = go_epoch(line.split(" ", 1)[1].strip())
    return out


# The v1 config every layer below an image's top one carries in a Docker 20.10 `docker save`:
# the zero container config as that version marshals it, created at the epoch in dockerd's
# local time (checked against real tars in tests/integration/test_layer_transfer.py). Other
# legacy versions (before 17.06 no epoch; 23, 24 unchecked) have their names read from the tar.
_V1_ZERO_CONFIG = (
    '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,'
    '"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,'
    '"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,'
    '"Labels":null}')


def go_epoch(local: str) -> str | None:
    """`date -d @0 +%Y-%m-%dT%H:%M:%S%:z` as Go's JSON writes that instant (Z for a zero
    offset); None when it is not a plain RFC 3339 time."""
    if len(local) != 25 or local[19] not in "+-" or local[22] != ":":
        return None
    return local[:19] + "Z" if local[19:] in ("+00:00", "-00:00") else local


def v1_paths(diff_ids: Sequence[str], epoch: str = "1970-01-01T00:00:00Z"
             ) -> list[str | None]:
    """The tar paths of an image's layers as Docker 20.10 names them, base first; None for the
    top layer, whose v1id hashes the image's whole config. moby's v1.CreateID: sha256 of the
    v1 config (ID empty) with `layer_id` (the ChainID) and `parent` (the previous v1id) added,
    keys sorted, compact. `epoch`: time.Unix(0, 0) in dockerd's zone, as Go writes it."""
    out: list[str | None] = []
    parent = ""
    for chain in chain_ids(diff_ids)[:-1]:
        doc = (f'{{"container_config":{_V1_ZERO_CONFIG},"created":"{epoch}",'
               f'"layer_id":"{chain}"' + (f',"parent":"sha256:{parent}"' if parent else "")
               + "}")
        parent = hashlib.sha256(doc.encode()).hexdigest()
        out.append(f"{parent}/layer.tar")
    return [*out, None] if diff_ids else []


def legacy_manifest(refs: list[str]) -> list[str]:
    return ["sh", "-c", _MANIFEST, "ferryman-manifest", *refs]


@dataclass
class Skip:
    """What a tar may leave out: its member names, and how many layers that is."""

    members: list[str] = field(default_factory=list)
    layers: int = 0
    kept: int = 0


def skippable(images: Iterable[Sequence[str]], have: set[str]) -> tuple[set[str], set[str]]:
    """(DiffIDs every image can do without, DiffIDs some image needs), over all images sent
    in one tar: a layer is left out only when no image needs it."""
    skip: set[str] = set()
    need: set[str] = set()
    for diffs in images:
        for diff, chain in zip(diffs, chain_ids(diffs), strict=True):
            (skip if chain in have else need).add(diff)
    return skip - need, need


def oci_skip(images: Iterable[Sequence[str]], have: set[str]) -> Skip:
    skip, need = skippable(list(images), have)
    return Skip(sorted(f"blobs/sha256/{d.split(':', 1)[1]}" for d in skip), len(skip),
                len(need))


def legacy_skip(images: Iterable[Sequence[str]], have: set[str], manifest: str) -> Skip:
    """Member paths from the tar's manifest.json, paired with each image's DiffIDs in order."""
    listed = json.loads(manifest)
    diffs_of = list(images)
    if len(listed) != len(diffs_of):
        raise ValueError(f"manifest.json lists {len(listed)} images, {len(diffs_of)} were saved")
    paths_of: list[Sequence[str | None]] = []
    for entry, diffs in zip(listed, diffs_of, strict=True):
        paths = entry.get("Layers") or []
        if len(paths) != len(diffs):
            raise ValueError(f"manifest.json lists {len(paths)} layers for {entry.get('Config')}"
                             f", the image has {len(diffs)}")
        paths_of.append(paths)
    return _path_skip(diffs_of, paths_of, have)


def computed_skip(images: Iterable[Sequence[str]], have: set[str],
                  epoch: str = "1970-01-01T00:00:00Z") -> Skip:
    """As `legacy_skip`, with the paths computed (`v1_paths`): every image's top layer goes."""
    diffs_of = list(images)
    return _path_skip(diffs_of, [v1_paths(d, epoch) for d in diffs_of], have)


def _path_skip(diffs_of: list[Sequence[str]], paths_of: list[Sequence[str | None]],
               have: set[str]) -> Skip:
    """A path is left out only when every DiffID it carries is skippable (a repeated layer's
    later copies link to the first); a layer whose path is unknown (None) is sent."""
    skip, need = skippable(diffs_of, have)
    carries: dict[str, set[str]] = {}
    for paths, diffs in zip(paths_of, diffs_of, strict=True):
        for path, diff in zip(paths, diffs, strict=True):
            if path is None:
                need.add(diff)
                skip.discard(diff)
            else:
                carries.setdefault(path, set()).add(diff)
    members = sorted(p for p, ds in carries.items() if ds <= skip)
    return Skip(members, len(skip), len(need))
