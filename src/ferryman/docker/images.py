"""argv builders for images: inspect, save and load (compressed when both ends can), tags."""

from __future__ import annotations

# Which compressors a host has; one round trip.
_TOOLS = 'for t in zstd gzip; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; exit 0'

# dash has no pipefail: each side of the pipe reports its own status, and any failure fails
# the whole command, so a cut stream is never taken for a complete one.
_SAVE = (
    'st=$(mktemp) || exit 1; c="$1"; shift; '
    '{ docker save "$@"; echo $? > "$st"; } | $c; z=$?; s=$(cat "$st"); rm -f "$st"; '
    'if [ "$s" != 0 ] || [ "$z" != 0 ]; then '
    'echo "docker save exit $s, compressor exit $z" >&2; exit 1; fi'
)
# The same, with members dropped from the tar on the source (GNU tar), named one a line in $2.
# Some names the tar lacks only means those members went along (tar exits 2 saying "Not found
# in archive" and passes everything else): the load is whole, so that is said, not failed.
# None found is a failure: GNU tar then writes nothing at all.
_SAVE_FILTERED = (
    'st=$(mktemp) && ft=$(mktemp) && te=$(mktemp) && names=$(mktemp) || exit 1; c="$1"; '
    'printf "%s\\n" "$2" > "$names"; shift 2; '
    '{ docker save "$@"; echo $? > "$st"; } | '
    '{ tar -f - --delete -T "$names" 2> "$te"; echo $? > "$ft"; } | $c; z=$?; '
    's=$(cat "$st"); f=$(cat "$ft"); m=$(grep -c "Not found in archive" "$te"); '
    'if [ "$f" = 2 ] && [ "$m" -gt 0 ] && [ "$m" -lt "$(wc -l < "$names")" ] && ! grep -v '
    '-e "Not found in archive" -e "Exiting with failure status" "$te" | grep -q .; then '
    'echo "ferryman-filter: $m path(s) to leave out were not in the tar" >&2; f=0; '
    'else cat "$te" >&2; fi; rm -f "$st" "$ft" "$te" "$names"; '
    'if [ "$s" != 0 ] || [ "$f" != 0 ] || [ "$z" != 0 ]; then '
    'echo "docker save exit $s, tar filter exit $f, compressor exit $z" >&2; exit 1; fi'
)
NOT_IN_TAR = "ferryman-filter: "
_LOAD = (
    'st=$(mktemp) || exit 1; '
    '{ $1; echo $? > "$st"; } | docker load; l=$?; d=$(cat "$st"); rm -f "$st"; '
    'if [ "$d" != 0 ] || [ "$l" != 0 ]; then '
    'echo "decompressor exit $d, docker load exit $l" >&2; exit 1; fi'
)
COMPRESS = {"zstd": "zstd -q -3 -T0 -c", "gzip": "gzip -1 -c", "none": "cat"}
DECOMPRESS = {"zstd": "zstd -q -d -c", "gzip": "gzip -d -c", "none": "cat"}


def compressors() -> list[str]:
    return ["sh", "-c", _TOOLS]


def pick_compression(src_tools: set[str], dst_tools: set[str]) -> str:
    for tool in ("zstd", "gzip"):
        if tool in src_tools and tool in dst_tools:
            return tool
    return "none"


def save(refs: list[str], compression: str) -> list[str]:
    return ["sh", "-c", _SAVE, "ferryman-save", COMPRESS[compression], *refs]


def save_without(refs: list[str], compression: str, members: list[str]) -> list[str]:
    """docker save, leaving out the tar members the target does not need."""
    return ["sh", "-c", _SAVE_FILTERED, "ferryman-save", COMPRESS[compression],
            "\n".join(members), *refs]


def load(compression: str) -> list[str]:
    return ["sh", "-c", _LOAD, "ferryman-load", DECOMPRESS[compression]]


def inspect_images(refs: list[str]) -> list[str]:
    return ["docker", "image", "inspect", *refs]


def image_id(ref: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", ref]


def tag(source: str, target: str) -> list[str]:
    return ["docker", "tag", source, target]


def untag(ref: str) -> list[str]:
    return ["docker", "rmi", ref]


def remove_image(image_id: str) -> list[str]:
    return ["docker", "rmi", image_id]
