"""argv builders for the docker CLI and the few POSIX tools ferryman uses on hosts.

Every function returns a list; transports quote it. No value is ever pasted into a shell
string: where a shell is needed, the script is a constant and values are its positional args.
"""

from __future__ import annotations

from collections.abc import Sequence


def inspect_containers(names: Sequence[str]) -> list[str]:
    return ["docker", "inspect", "--type", "container", *names]


def container_image_id(name: str) -> list[str]:
    return ["docker", "inspect", "--format", "{{.Image}}", name]


def exec_in(container: str, argv: Sequence[str], *, user: str | None = None,
            interactive: bool = False) -> list[str]:
    """argv run inside a running container; interactive keeps stdin open to feed it."""
    return ["docker", "exec", *(["-i"] if interactive else []), *(["-u", user] if user else []),
            container, *argv]


def docker_version() -> list[str]:
    return ["docker", "version", "--format", "{{json .}}"]


def docker_info() -> list[str]:
    return ["docker", "info", "--format", "{{json .}}"]


def docker_root_dir() -> list[str]:
    return ["docker", "info", "--format", "{{.DockerRootDir}}"]


def disk_free(path: str) -> list[str]:
    return ["df", "-Pk", "--", path]


def container_logs(name: str, tail: int | None = None, follow: bool = False,
                   timestamps: bool = False) -> list[str]:
    argv = ["docker", "logs"]
    if tail is not None:
        argv += ["--tail", str(tail)]
    if follow:
        argv.append("--follow")
    if timestamps:
        argv.append("--timestamps")
    return [*argv, name]


def restart_container(name: str, stop_timeout: int | None = 10) -> list[str]:
    """`stop_timeout` None leaves the grace period to the container's own setting."""
    time = ["--time", str(stop_timeout)] if stop_timeout is not None else []
    return ["docker", "restart", *time, name]


def stop_container(name: str) -> list[str]:
    return ["docker", "stop", name]


def start_container(name: str) -> list[str]:
    return ["docker", "start", name]


def rename_container(name: str, new_name: str) -> list[str]:
    return ["docker", "rename", name, new_name]


def remove_container(name: str, force: bool = False) -> list[str]:
    return ["docker", "rm", *(["-f"] if force else []), name]


def set_restart_policy(name: str, policy: str) -> list[str]:
    return ["docker", "update", "--restart", policy, name]


def all_containers() -> list[str]:
    """name TAB status of every container, stopped ones too."""
    return ["docker", "ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]


def all_container_images() -> list[str]:
    """name TAB image of every container, stopped ones too."""
    return ["docker", "ps", "-a", "--format", "{{.Names}}\t{{.Image}}"]


def remove_image(ref: str) -> list[str]:
    return ["docker", "rmi", ref]


def image_facts(ids: Sequence[str]) -> list[str]:
    return ["docker", "image", "inspect", "--format",
            "{{.Id}} {{.Os}}/{{.Architecture}} {{.Size}}", *ids]


def create_volume(name: str) -> list[str]:
    return ["docker", "volume", "create", name]


def volume_mountpoints(names: Sequence[str]) -> list[str]:
    """One "NAME MOUNTPOINT" line per volume that exists."""
    return ["docker", "volume", "inspect", "--format", "{{.Name}} {{.Mountpoint}}", *names]


def network_names() -> list[str]:
    return ["docker", "network", "ls", "--format", "{{.Name}}"]


def inspect_networks(names: Sequence[str]) -> list[str]:
    return ["docker", "network", "inspect", *names]


# Prints "y PATH" or "n PATH" per argument: one round trip for many files.
_FILES_EXIST = 'for f in "$@"; do if [ -e "$f" ]; then echo "y $f"; else echo "n $f"; fi; done'


def files_exist(paths: Sequence[str]) -> list[str]:
    return ["sh", "-c", _FILES_EXIST, "ferryman-files", *paths]


# Fetches a URL with whichever client the host has; exit 0 only on a 2xx/3xx answer.
_HTTP_PROBE = (
    'if command -v curl >/dev/null 2>&1; then '
    'exec curl -fsS -o /dev/null --max-time "$2" "$1"; '
    'elif command -v wget >/dev/null 2>&1; then '
    'exec wget -q -O /dev/null -T "$2" "$1"; '
    'else echo "neither curl nor wget is installed on this host" >&2; exit 127; fi'
)


def http_probe(url: str, timeout: float) -> list[str]:
    return ["sh", "-c", _HTTP_PROBE, "ferryman-http", url, str(max(1, round(timeout)))]


# Several small text files in one command: a record separator, + or - (read or not), the path,
# then the file's text.
_READ_FILES = ('for f; do if [ -r "$f" ] && [ -f "$f" ]; then printf \'\\036+%s\\n\' "$f"; '
               'cat -- "$f"; else printf \'\\036-%s\\n\' "$f"; fi; done')


def read_files(paths: Sequence[str]) -> list[str]:
    return ["sh", "-c", _READ_FILES, "ferryman-read", *paths]


def parse_read_files(stdout: str) -> dict[str, str | None]:
    """path -> its text, None for a file that is absent or unreadable."""
    out: dict[str, str | None] = {}
    for chunk in stdout.split("\x1e")[1:]:
        head, _, text = chunk.partition("\n")
        if head[:1] in ("+", "-") and head[1:]:
            out[head[1:]] = text if head[0] == "+" else None
    return out


def parse_files_exist(stdout: str) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for line in stdout.splitlines():
        flag, _, path = line.partition(" ")
        if flag in ("y", "n") and path:
            found[path] = flag == "y"
    return found


def parse_df(stdout: str) -> tuple[int, int] | None:
    """(total bytes, available bytes) from `df -Pk` output, or None when unreadable."""
    lines = stdout.strip().splitlines()
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[1]) * 1024, int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None
