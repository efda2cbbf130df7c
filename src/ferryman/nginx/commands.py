"""argv builders for the host's nginx and the connections of a side; pure."""

from __future__ import annotations

# Written beside the file and renamed over it: nginx never reads half a file.
_INSTALL = ('mkdir -p "$(dirname "$1")" && cat > "$1.ferryman-tmp" && '
            'mv -f "$1.ferryman-tmp" "$1"')
_MARKER = (
    'url="http://127.0.0.1:$1$3"; '
    'if command -v curl >/dev/null 2>&1; then curl -sf -m 2 -H "Host: $2" "$url"; '
    'else wget -q -T 2 -O - --header "Host: $2" "$url"; fi'
)


def install(path: str) -> list[str]:
    """Writes stdin to path by an atomic rename."""
    return ["sh", "-c", _INSTALL, "ferryman-upstream", path]


def test(nginx: str) -> list[str]:
    return [nginx, "-t"]


def reload(nginx: str) -> list[str]:
    return [nginx, "-s", "reload"]


def dump(nginx: str) -> list[str]:
    """The whole configuration nginx would load, every include expanded."""
    return [nginx, "-T"]


def generation(marker_port: int, host: str, path: str) -> list[str]:
    return ["sh", "-c", _MARKER, "ferryman-marker", str(marker_port), host, path]


def connections(port: int) -> list[str]:
    """Established connections to a loopback port: nginx's to that side (the counting is
    done on nginx's end, the same with or without Docker's userland proxy)."""
    return ["ss", "-Htn", "state", "established", "dst", f"127.0.0.1:{port}"]


# Workers of an earlier configuration still serving what they accepted before the reload:
# until they are gone, a request can still reach the old side.
_OLD_WORKERS = "ps -eo args= | grep -c '^nginx: worker process is shutting down' || true"


def old_workers() -> list[str]:
    return ["sh", "-c", _OLD_WORKERS]


def listening(port: int) -> list[str]:
    return ["ss", "-Hltn", "(", "sport", "=", f":{port}", ")"]


_SIZE = 'stat -c %s "$1" 2>/dev/null || echo 0'
_FROM = '[ -e "$2" ] || exit 0; tail -c +"$1" -- "$2"'
_CONTROL = '[ -e "$1" ] || exit 0; cat -- "$1"; rm -f -- "$1"'


def file_size(path: str) -> list[str]:
    return ["sh", "-c", _SIZE, "ferryman-size", path]


def read_from(path: str, offset: int) -> list[str]:
    """The file's bytes after the first `offset`."""
    return ["sh", "-c", _FROM, "ferryman-tail", str(offset + 1), path]


def take_control(path: str) -> list[str]:
    """What `ferryman canary` asked (promote, abort), read once and removed."""
    return ["sh", "-c", _CONTROL, "ferryman-control", path]
