"""Archives of data items on a host, and their manifest. argv builders and parsers only.

One tar stream per item (a named volume's folder or a host folder), compressed with zstd or
gzip, with the counts and digests that let a restore prove it put back every byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..docker import commands as dc
from ..docker.images import COMPRESS, DECOMPRESS
from ..state import ID_PATTERN as ID_PATTERN
from ..state import stamp_id

EXTENSION = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}
MANIFEST = "manifest.json"

# sha256 of stdin, printed first on its line: OpenSSL's where it is installed (it uses the
# CPU's SHA instructions: 4x coreutils' sha256sum, measured on a 1 GB file), sha256sum
# otherwise. The same digest either way.
_SHA256_FN = r'''
sha256() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi
}
'''

# "FILES BYTES" of a folder's regular files, in one walk of the tree. printf, not print: mawk
# (Debian's awk) prints sums from 2^31 on as 3e+09.
_COUNT_FN = r'''
count_files() {
  find "$1" -xdev -type f -printf '%s\n' | awk '{n++; s+=$1} END {printf "%.0f %.0f\n", n, s}'
}
'''

# Archive one folder: counts first (files, bytes of regular files), then the tar stream
# through the compressor into the archive, hashed as it is written (no second read), each
# side's status checked (dash has no pipefail). Prints: FILES BYTES SHA256 ARCHIVE_BYTES.
# FOLLOW set: the archive is read while it grows (see _FOLLOW): its writer's pid is left in
# OUT.pid, and the archive keeps its .part name until the reader has opened it.
_PACK = _SHA256_FN + _COUNT_FN + r'''
set -u
src=$1 out=$2 comp=$3 follow=${4:-}
[ -d "$src" ] || { echo "no such folder: $src" >&2; exit 66; }
# Followed: its copy is being sent while the writers wait, so the snapshot takes the CPU first
# (where the login may raise its priority; otherwise as it was).
[ -z "$follow" ] || renice -n -5 -p $$ >/dev/null 2>&1 || true
mkdir -p "$(dirname "$out")" || exit 1
counts=$(count_files "$src") || exit 1
files=${counts% *} bytes=${counts#* }
: > "$out.part" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/h" || exit 1
[ -z "$follow" ] || echo $$ > "$out.pid" || exit 1
# From here on nothing exits before tee has opened the fifo its reader waits on.
sha256 < "$tmp/h" > "$tmp/sha" &
hp=$!
{ tar -C "$src" --numeric-owner -cf - . ; echo $? > "$tmp/t"; } \
  | { $comp; echo $? > "$tmp/z"; } | tee "$tmp/h" >> "$out.part"
w=$?
wait $hp; h=$?
t=$(cat "$tmp/t") z=$(cat "$tmp/z")
if [ "$t" != 0 ] || [ "$z" != 0 ] || [ "$w" != 0 ] || [ "$h" != 0 ]; then
  rm -f "$out.part" "$out.pid"
  echo "tar exit $t, compressor exit $z, write exit $w, sha256 exit $h" >&2; exit 1
fi
if [ -n "$follow" ]; then
  i=0
  while [ ! -e "$out.following" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  rm -f "$out.pid" "$out.following"
fi
mv "$out.part" "$out" || exit 1
echo "$files $bytes $(cut -d' ' -f1 "$tmp/sha") $(stat -c %s "$out")"
'''

# Read an archive while _PACK writes it, from its first byte to its last: waits for the
# writer to start, opens the growing file, tells the writer so, and follows it until the
# writer has exited (GNU tail reads what is left, then stops). The bytes are checked at the
# far end against the writer's sha256, so a writer that fails leaves nothing accepted.
_FOLLOW = r'''
set -u
out=$1 i=0
while [ ! -s "$out.pid" ]; do
  i=$((i+1)); [ $i -le 600 ] || { echo "nothing is being written at $out.part" >&2; exit 1; }
  sleep 0.1
done
pid=$(cat "$out.pid")
exec < "$out.part" || exit 1
: > "$out.following" || exit 1
# Niced: where CPU is short, the snapshot the writers wait for goes first.
exec nice -n 10 tail -c +1 -s 0.2 --pid="$pid" -f -
'''

# Take an archive from stdin: written to OUT, hashed, and (DEST set) unpacked into a fresh
# DEST and counted, all from the one stream. Prints: FILES BYTES SHA256 ARCHIVE_BYTES
# (FILES and BYTES 0 without DEST).
_RECEIVE = _SHA256_FN + _COUNT_FN + r'''
set -u
out=$1 dest=$2 decomp=$3
mkdir -p "$(dirname "$out")" && : > "$out.part" || exit 1
if [ -n "$dest" ]; then rm -rf -- "$dest" && mkdir -p -- "$dest" || exit 1; fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/h" "$tmp/a" || exit 1
echo 0 > "$tmp/d"
# From here on nothing exits before tee has opened the fifos their readers wait on.
sha256 < "$tmp/h" > "$tmp/sha" &
hp=$!
if [ -n "$dest" ]; then
  { $decomp < "$tmp/a"; echo $? > "$tmp/d"; } | tar -C "$dest" --numeric-owner -xpf - &
else
  cat < "$tmp/a" > /dev/null &
fi
up=$!
tee "$tmp/h" "$tmp/a" > "$out.part"
w=$?
wait $hp; h=$?
wait $up; x=$?
d=$(cat "$tmp/d")
if [ "$w" != 0 ] || [ "$h" != 0 ] || [ "$x" != 0 ] || [ "$d" != 0 ]; then
  rm -f "$out.part"
  echo "write exit $w, sha256 exit $h, decompressor exit $d, tar exit $x" >&2; exit 1
fi
mv "$out.part" "$out" || exit 1
files=0 bytes=0
if [ -n "$dest" ]; then
  counts=$(count_files "$dest") || exit 1
  files=${counts% *} bytes=${counts#* }
fi
echo "$files $bytes $(cut -d' ' -f1 "$tmp/sha") $(stat -c %s "$out")"
'''

# Unpack an archive into a fresh folder and count what came out. Prints: FILES BYTES.
_UNPACK = _COUNT_FN + r'''
set -u
archive=$1 dest=$2 decomp=$3
rm -rf -- "$dest" && mkdir -p -- "$dest" || exit 1
st=$(mktemp) || exit 1
{ $decomp < "$archive"; echo $? > "$st"; } | tar -C "$dest" --numeric-owner -xpf -
x=$?; d=$(cat "$st"); rm -f "$st"
if [ "$d" != 0 ] || [ "$x" != 0 ]; then
  echo "decompressor exit $d, tar exit $x" >&2; exit 1
fi
count_files "$dest"
'''

# Swap a staged folder in: live -> old, staged -> live. Each mv is atomic on one filesystem.
# A live folder that does not exist yet (first sync to a new server) is simply created.
_SWAP = 'if [ -e "$1" ]; then mv -T -- "$1" "$3" || exit 1; fi; mv -T -- "$2" "$1"'
# And back: live (the new data) -> staged, old -> live.
# And back, from wherever a swap stopped: old set aside (the swap began) -> put it back; no
# old and no staged: a live folder the swap created -> staged again; staged still there with
# no old: the swap never began, live holds the old data -> nothing to do.
_UNSWAP = (
    'if [ -e "$3" ]; then if [ -e "$1" ]; then mv -T -- "$1" "$2" || exit 1; fi; '
    'mv -T -- "$3" "$1"; elif [ ! -e "$2" ] && [ -e "$1" ]; then mv -T -- "$1" "$2"; fi'
)


# A database dump taken inside its running container, compressed on the host.
# Prints: 1 BYTES SHA256 ARCHIVE_BYTES (BYTES: the dump's size uncompressed).
_DUMP = _SHA256_FN + r'''
set -u
out=$1 comp=$2 decomp=$3; shift 3
mkdir -p "$(dirname "$out")" || exit 1
st=$(mktemp) || exit 1
{ "$@"; echo $? > "$st"; } | $comp > "$out.part"
z=$?; d=$(cat "$st"); rm -f "$st"
if [ "$d" != 0 ] || [ "$z" != 0 ]; then
  rm -f "$out.part"; echo "dump exit $d, compressor exit $z" >&2; exit 1
fi
mv "$out.part" "$out" || exit 1
bytes=$($decomp < "$out" | wc -c)
echo "1 $bytes $(sha256 < "$out" | cut -d' ' -f1) $(stat -c %s "$out")"
'''

# Feed a dump back into its database; both sides of the pipe checked.
_LOAD_DUMP = _SHA256_FN + r'''
set -u
archive=$1 decomp=$2; shift 2
st=$(mktemp) || exit 1
{ $decomp < "$archive"; echo $? > "$st"; } | "$@"
r=$?; d=$(cat "$st"); rm -f "$st"
if [ "$d" != 0 ] || [ "$r" != 0 ]; then
  echo "decompressor exit $d, restore exit $r" >&2; exit 1
fi
'''

# The container's own MYSQL_ROOT_PASSWORD, when it has one: no secret in ferryman's argv.
_MYSQL_AUTH = (
    'u=$1 db=$2; shift 2; exec "$@" -u"$u" ${MYSQL_ROOT_PASSWORD:+-p"$MYSQL_ROOT_PASSWORD"} "$db"'
)

# Redis, consistent while it keeps serving: BGSAVE forks a snapshot; the dump is complete
# once LASTSAVE moves past the second it read before (a save in the same second would not
# move it: wait for the next second first) and the save says ok. Then the file is read.
# Runs inside the container; the container's REDISCLI_AUTH, if set, signs redis-cli in.
_REDIS_DUMP = r'''
set -u
before=$(redis-cli LASTSAVE) || exit 1
while [ "$(date +%s)" -le "$before" ]; do sleep 0.2; done
redis-cli BGSAVE >&2 || exit 1
i=0
while [ "$(redis-cli LASTSAVE)" = "$before" ]; do
  i=$((i+1)); [ $i -le 3000 ] || { echo "BGSAVE did not finish in 10 minutes" >&2; exit 1; }
  sleep 0.2
done
redis-cli INFO persistence | grep -q '^rdb_last_bgsave_status:ok' \
  || { echo "BGSAVE failed: $(redis-cli INFO persistence | grep bgsave_status)" >&2; exit 1; }
dir=$(redis-cli CONFIG GET dir | sed -n 2p) file=$(redis-cli CONFIG GET dbfilename | sed -n 2p)
exec cat -- "$dir/$file"
'''

# Put a Redis dump back (stdin, on the host): Redis reads its dump only when it starts, so the
# container is stopped (docker stop: no restart policy fights it), the file copied in over the
# one it saved on the way down, and the container started and asked for PONG. An append-only
# file would win over the dump at start: refused.
_REDIS_LOAD = r'''
set -u
c=$1
cli() { docker exec "$c" redis-cli "$@"; }
aof=$(cli CONFIG GET appendonly | sed -n 2p) || exit 1
if [ "$aof" != no ]; then
  echo "$c has appendonly $aof: Redis would load its AOF, not the dump" >&2; exit 1
fi
dir=$(cli CONFIG GET dir | sed -n 2p) file=$(cli CONFIG GET dbfilename | sed -n 2p)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/$file" || exit 1
[ -s "$tmp/$file" ] || { echo "the dump is empty" >&2; exit 1; }
chmod 644 "$tmp/$file"
docker stop "$c" >/dev/null || exit 1
docker cp "$tmp/$file" "$c:$dir/$file" || { docker start "$c" >/dev/null; exit 1; }
docker start "$c" >/dev/null || exit 1
i=0
until [ "$(cli PING 2>/dev/null)" = PONG ]; do
  i=$((i+1)); [ $i -le 300 ] || { echo "$c did not answer PING after the load" >&2; exit 1; }
  sleep 0.2
done
'''


@dataclass
class Item:
    kind: str  # volume | path | dump
    name: str  # the volume name, the folder path, or container/database
    archive: str = ""  # file name inside the backup folder
    files: int = 0
    bytes: int = 0
    sha256: str = ""
    archive_bytes: int = 0
    engine: str = ""  # dumps: postgres | mysql | redis
    user: str = ""

    @property
    def label(self) -> str:
        return {"volume": "volume", "path": "folder", "dump": "database"}[self.kind] + \
            f" {self.name}"

    @property
    def container(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def database(self) -> str:
        return self.name.split("/", 1)[1]


@dataclass
class Manifest:
    id: str
    project: str
    env: str
    host: str
    created: str
    compression: str
    ferryman: str
    kind: str = "backup"  # backup | safety (taken before an apply) | sync
    items: list[Item] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # container -> image id
    stopped: list[str] = field(default_factory=list)  # stopped for the snapshot, in order
    snapshot_started: str = ""  # host clock, around the archiving
    snapshot_ended: str = ""
    source: str = ""  # for a sync: env/host/id it came from
    # dump name -> the masking rules run on it before this copy's archive was taken again
    masked: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def parse(cls, text: str) -> Manifest:
        data = json.loads(text)
        items = [Item(**i) for i in data.pop("items", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known, items=items)

    @property
    def total_bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    @property
    def archive_bytes(self) -> int:
        return sum(i.archive_bytes for i in self.items)


def backup_id(kind: str = "b", now: datetime | None = None) -> str:
    return stamp_id(kind, now)


def archive_name(item: Item, compression: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name.strip("/")) or "root"
    ext = EXTENSION[compression].replace(".tar", f".{item.engine}") if item.kind == "dump" \
        else EXTENSION[compression]
    return f"{item.kind}-{slug}{ext}"


def dump_command(item: Item) -> list[str]:
    if item.engine == "redis":
        return dc.exec_in(item.container, ["sh", "-c", _REDIS_DUMP, "ferryman-redis-dump"])
    if item.engine == "postgres":
        return dc.exec_in(item.container, ["pg_dump", "-U", item.user or "postgres", "-Fc",
                                           item.database], user="postgres")
    return dc.exec_in(item.container, ["sh", "-c", _MYSQL_AUTH, "ferryman-dump",
                                       item.user or "root", item.database, "mysqldump",
                                       "--single-transaction", "--routines", "--triggers"])


def load_command(item: Item) -> list[str]:
    if item.engine == "redis":  # runs on the host: the container is restarted
        return ["sh", "-c", _REDIS_LOAD, "ferryman-redis-load", item.container]
    if item.engine == "postgres":
        # One transaction: a restore that fails midway leaves the database as it was.
        return dc.exec_in(item.container, ["pg_restore", "-U", item.user or "postgres",
                                           "-d", item.database, "--clean", "--if-exists",
                                           "--no-owner", "--single-transaction"],
                          user="postgres", interactive=True)
    return dc.exec_in(item.container, ["sh", "-c", _MYSQL_AUTH, "ferryman-load",
                                       item.user or "root", item.database, "mysql"],
                      interactive=True)


def mask_command(item: Item) -> list[str]:
    """Runs the SQL on stdin in item's database, all or nothing, stopping at the first error."""
    if item.engine == "postgres":
        return dc.exec_in(item.container, ["psql", "-U", item.user or "postgres", "-d",
                                           item.database, "-v", "ON_ERROR_STOP=1",
                                           "--single-transaction", "-q", "-f", "-"],
                          user="postgres", interactive=True)
    if item.engine == "mysql":
        return dc.exec_in(item.container, ["sh", "-c", _MYSQL_AUTH, "ferryman-mask",
                                           item.user or "root", item.database, "mysql"],
                          interactive=True)
    raise ValueError(f"{item.engine} has no SQL to mask with")


def mask_sql(item: Item, rules: list[str]) -> bytes:
    """The rules as one script for mask_command: fed on stdin, never pasted into a shell."""
    body = "".join(r.strip().rstrip(";") + ";\n" for r in rules)
    if item.engine == "mysql":  # the mysql client stops at the first error; nothing commits
        body = f"SET autocommit=0;\nSTART TRANSACTION;\n{body}COMMIT;\n"
    return body.encode()


def dump(item: Item, out: str, compression: str) -> list[str]:
    return ["sh", "-c", _DUMP, "ferryman-dump", out, COMPRESS[compression],
            DECOMPRESS[compression], *dump_command(item)]


def dump_size(archive: str, compression: str) -> list[str]:
    """Prints the uncompressed size of a dump archive: a drill for dumps."""
    return ["sh", "-c", '$1 < "$2" | wc -c', "ferryman-size", DECOMPRESS[compression], archive]


def load_dump(item: Item, archive: str, compression: str) -> list[str]:
    return ["sh", "-c", _LOAD_DUMP, "ferryman-load", archive, DECOMPRESS[compression],
            *load_command(item)]


def folder(backup_dir: str, project: str, bid: str = "") -> str:
    base = f"{backup_dir.rstrip('/')}/{project}"
    return f"{base}/{bid}" if bid else base


# A folder's archive is written while its writers are stopped: zstd's fastest level (a quarter
# less CPU than -3 on 1 GB of mixed files, 0.01% larger), as every second of it is downtime.
PACK_COMPRESS = {**COMPRESS, "zstd": "zstd -q -1 -T0 -c"}


def pack(src: str, out: str, compression: str, follow: bool = False) -> list[str]:
    """follow: the archive is read while it is written (follow_archive)."""
    return ["sh", "-c", _PACK, "ferryman-pack", src, out, PACK_COMPRESS[compression],
            *(["follow"] if follow else [])]


def follow_archive(out: str) -> list[str]:
    """Streams the archive a `pack(..., follow=True)` is writing at `out`, whole."""
    return ["sh", "-c", _FOLLOW, "ferryman-follow", out]


def receive(out: str, dest: str, compression: str) -> list[str]:
    """Writes stdin to `out` and (dest) unpacks it into a fresh `dest` as it arrives."""
    return ["sh", "-c", _RECEIVE, "ferryman-receive", out, dest, DECOMPRESS[compression]]


def parse_pack(stdout: str) -> tuple[int, int, str, int]:
    files, size, sha, archive = stdout.split()[-4:]
    return int(files), int(size), sha, int(archive)


def unpack(archive: str, dest: str, compression: str) -> list[str]:
    return ["sh", "-c", _UNPACK, "ferryman-unpack", archive, dest, DECOMPRESS[compression]]


def parse_unpack(stdout: str) -> tuple[int, int]:
    files, size = stdout.split()[-2:]
    return int(files), int(size)


def swap(live: str, staged: str, old: str) -> list[str]:
    return ["sh", "-c", _SWAP, "ferryman-swap", live, staged, old]


def unswap(live: str, staged: str, old: str) -> list[str]:
    return ["sh", "-c", _UNSWAP, "ferryman-unswap", live, staged, old]


# One line per file as sha256sum prints it ("DIGEST  PATH"); a file that cannot be read
# prints no line and the exit status says so.
_DIGESTS = _SHA256_FN + r'''
rc=0
for f; do
  d=$(sha256 < "$f") || { rc=1; continue; }
  echo "${d%% *}  $f"
done
exit $rc
'''


def sha256(paths: list[str]) -> list[str]:
    return ["sh", "-c", _DIGESTS, "ferryman-sha256", *paths]


def parse_sha256(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        digest, _, path = line.partition("  ")
        if path:
            out[path] = digest
    return out


def host_clock() -> list[str]:
    return ["date", "-u", "+%Y-%m-%dT%H:%M:%S.%NZ"]


def list_manifests(base: str) -> list[str]:
    # One round trip: every manifest under the project's backup folder, separated.
    script = ('for m in "$1"/*/manifest.json; do [ -f "$m" ] && cat "$m" && printf "\\036"; '
              'done; exit 0')
    return ["sh", "-c", script, "ferryman-list", base]


CHECKS = "checks.jsonl"  # one line per verify or drill of a backup, beside the backups


def append_check(base: str, line: str) -> list[str]:
    script = 'mkdir -p "$1" && printf "%s\\n" "$2" >> "$1/checks.jsonl"'
    return ["sh", "-c", script, "ferryman-check", base, line]


def read_checks(base: str) -> list[str]:
    return ["sh", "-c", '[ -f "$1/checks.jsonl" ] || exit 0; cat "$1/checks.jsonl"',
            "ferryman-checks", base]


def parse_checks(stdout: str) -> dict[str, dict[str, object]]:
    """backup id -> its latest check ({"ok", "kind", "when", "who", "said"})."""
    out: dict[str, dict[str, object]] = {}
    for line in stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            out[rec["id"]] = rec
    return out


def parse_manifests(stdout: str) -> list[Manifest]:
    out = []
    for chunk in stdout.split("\x1e"):
        if chunk.strip():
            try:
                out.append(Manifest.parse(chunk))
            except (ValueError, TypeError, KeyError):
                continue
    return sorted(out, key=lambda m: m.created)


def failed_checks(checks: dict[str, dict[str, object]]) -> set[str]:
    """Ids of the backups whose latest verify or drill failed: flagged, never counted."""
    return {bid for bid, rec in checks.items() if rec.get("ok") is False}


def beyond_retention(manifests: list[Manifest], keep: int, keep_days: float | None,
                     now: datetime | None = None,
                     checks: dict[str, dict[str, object]] | None = None) -> list[Manifest]:
    """Backups to remove: neither among the newest `keep` nor younger than `keep_days`.

    checks (backup id -> its latest check): a backup whose check failed is not counted among
    the `keep` (it cannot be restored from), and stays, flagged, while a counted one older
    than it is kept; the newest backup whose check passed is never removed."""
    checks = checks or {}
    failed = failed_checks(checks)
    newest = sorted(manifests, key=lambda m: m.created, reverse=True)
    counted = [m for m in newest if m.id not in failed]
    floor = counted[keep - 1].created if len(counted) >= keep else ""
    verified = next((m.id for m in newest if checks.get(m.id, {}).get("ok") is True), None)
    now = now or datetime.now(UTC)
    out = []
    for m in newest:
        if m.id == verified or m in counted[:keep] or (m.id in failed and m.created >= floor):
            continue
        try:
            age_days = (now - datetime.fromisoformat(m.created)).total_seconds() / 86400
        except ValueError:
            age_days = float("inf")  # an unreadable date never protects a backup
        if keep_days is None or age_days > keep_days:
            out.append(m)
    return sorted(out, key=lambda m: m.created)


def to_dict(m: Manifest) -> dict[str, Any]:
    return asdict(m)
