"""What init runs on a host, as argv lists, and how their output is read back.

Every command here only reads: scripts are constants and every value is a positional
argument, as everywhere in ferryman.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

# Every container of the host, stopped ones too, in one round trip. $ids is split on purpose:
# it holds hex ids only.
_INSPECT_ALL = ('ids=$(docker ps -aq --no-trunc) || exit $?; [ -z "$ids" ] && exit 0; '
                "exec docker inspect --type container $ids")

# Per path given: "d I code" / "d I -" (a folder, and whether it looks like source code),
# "f I" (a file), "n I" (absent); then "c I PATH64 BODY64" for each small JSON or YAML file at
# the path or below it (depth and count bounded: a data folder may hold millions of files).
_CONFIG_FILES = r"""
max=$1; shift
i=0
for p in "$@"; do
  i=$((i+1))
  if [ -d "$p" ]; then
    code=-
    for m in .git package.json go.mod pyproject.toml setup.py requirements.txt composer.json \
             Gemfile pom.xml build.gradle Cargo.toml manage.py; do
      [ -e "$p/$m" ] && code=code && break
    done
    echo "d $i $code"
    find "$p" -maxdepth 3 \( -name .git -o -name node_modules \) -prune -o -type f \
      \( -name '*.json' -o -name '*.yml' -o -name '*.yaml' \) -size -"$max"c -print \
      2>/dev/null | head -n 40 | while IFS= read -r f; do
        printf 'c %s %s %s\n' "$i" "$(printf %s "$f" | base64 -w0)" \
          "$(base64 -w0 < "$f" 2>/dev/null)"
      done
  elif [ -f "$p" ]; then
    echo "f $i"
    case "$p" in
      *.json|*.yml|*.yaml)
        if [ "$(wc -c < "$p")" -lt "$max" ]; then
          printf 'c %s %s %s\n' "$i" "$(printf %s "$p" | base64 -w0)" \
            "$(base64 -w0 < "$p" 2>/dev/null)"
        fi ;;
    esac
  else
    echo "n $i"
  fi
done
exit 0
"""

# "CODE URL" per URL asked, with curl or else wget (000: no HTTP answer). Per base URL (a
# published port) the paths are tried in order up to the first that answers 2xx or 3xx; a
# port that gives no HTTP answer at all is not asked again.
_HTTP_STATUS = r"""
t=$1; shift
for b in "$@"; do
  for p in /health /healthz /; do
    if command -v curl >/dev/null 2>&1; then
      c=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$t" "$b$p" 2>/dev/null) || true
    elif command -v wget >/dev/null 2>&1; then
      if wget -q -O /dev/null -T "$t" "$b$p" 2>/dev/null; then c=200; else c=000; fi
    else
      echo "neither curl nor wget is installed on this host" >&2; exit 127
    fi
    echo "${c:-000} $b$p"
    case "$c" in 2??|3??|000|"") break ;; esac
  done
done
"""
HEALTH_PATHS = ("/health", "/healthz", "/")  # as tried by _HTTP_STATUS, in order

# The host's addresses with their interfaces (`ip`), else bare (`hostname -I`).
_ADDRESSES = ('if command -v ip >/dev/null 2>&1; then exec ip -o addr show scope global; fi; '
              'exec hostname -I')
# Interfaces Docker and other container runtimes make: their addresses are the same on many
# hosts and name no environment (172.17.0.1 is "this host" as any container sees it).
BRIDGES = ("docker", "br-", "veth", "cni", "flannel", "cali", "virbr", "lxc", "tunl", "vxlan",
           "weave", "kube")

MAX_CONFIG_BYTES = 256 * 1024


def inspect_all() -> list[str]:
    return ["sh", "-c", _INSPECT_ALL, "ferryman-inspect-all"]


def own_addresses() -> list[str]:
    return ["sh", "-c", _ADDRESSES, "ferryman-addresses"]


def config_files(paths: list[str], max_bytes: int = MAX_CONFIG_BYTES) -> list[str]:
    return ["sh", "-c", _CONFIG_FILES, "ferryman-config-files", str(max_bytes), *paths]


def http_status(bases: list[str], timeout: int = 3) -> list[str]:
    """GETs to http://IP:PORT + each of HEALTH_PATHS, from the host itself."""
    return ["sh", "-c", _HTTP_STATUS, "ferryman-http-status", str(timeout), *bases]


# --- parsers ------------------------------------------------------------------------------


@dataclass
class PathInfo:
    """What a mount's host path is: a folder (maybe of source code), a file, or absent."""

    path: str
    kind: str  # "dir", "file", "absent"
    code: bool = False
    files: dict[str, str] = field(default_factory=dict)  # JSON/YAML file -> its text


def parse_config_files(paths: list[str], stdout: str) -> dict[str, PathInfo]:
    out: dict[str, PathInfo] = {}
    for line in stdout.splitlines():
        parts = line.split(" ")
        if len(parts) < 2 or not parts[1].isdigit() or not 0 < int(parts[1]) <= len(paths):
            continue
        path = paths[int(parts[1]) - 1]
        tag = parts[0]
        if tag == "d":
            out[path] = PathInfo(path, "dir", code=len(parts) > 2 and parts[2] == "code")
        elif tag == "f":
            out[path] = PathInfo(path, "file")
        elif tag == "n":
            out[path] = PathInfo(path, "absent")
        elif tag == "c" and len(parts) >= 3 and path in out:
            try:
                name = base64.b64decode(parts[2]).decode("utf-8")
                body = base64.b64decode(parts[3] if len(parts) > 3 else "")
            except (binascii.Error, UnicodeDecodeError):
                continue
            out[path].files[name] = body.decode("utf-8", "replace")
    return out


def parse_own_addresses(stdout: str) -> list[str]:
    """The host's own addresses, those of container bridges left out: from `ip -o addr`
    lines (`2: eth0    inet 10.0.0.5/24 brd ... scope global eth0`), else `hostname -I`."""
    out = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0].endswith(":") and fields[2] in ("inet", "inet6"):
            if not fields[1].startswith(BRIDGES):
                out.append(fields[3].split("/")[0])
        elif line.strip() and not fields[0].endswith(":"):
            out += fields  # hostname -I: one line of addresses, interfaces unknown
    return list(dict.fromkeys(out))


def parse_http_status(stdout: str) -> dict[str, int]:
    out = {}
    for line in stdout.splitlines():
        code, _, url = line.strip().partition(" ")
        if code.isdigit() and url:
            out[url] = int(code)
    return out
