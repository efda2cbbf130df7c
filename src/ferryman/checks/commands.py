"""argv builders for what doctor runs on hosts. As everywhere in ferryman, scripts are
constants and every value is a positional argument."""

from __future__ import annotations

from collections.abc import Sequence

# Connects to IP:PORT from inside a container's network namespace. The container may lack
# every tool, so the host's own are used there (nsenter from util-linux, bash's /dev/tcp,
# coreutils' timeout); without root, the container's own nc is the fallback.
_NETNS_CONNECT = r"""
pid=$1 ip=$2 port=$3 t=$4 name=$5
if [ "$(id -u)" = 0 ] && command -v nsenter >/dev/null 2>&1 && [ "$pid" -gt 0 ]; then
  if command -v bash >/dev/null 2>&1; then
    exec nsenter -t "$pid" -n timeout "$t" \
      bash -c 'exec 3<>"/dev/tcp/$1/$2"' ferryman-tcp "$ip" "$port"
  fi
  if command -v nc >/dev/null 2>&1; then
    exec nsenter -t "$pid" -n timeout "$t" nc -w "$t" "$ip" "$port" </dev/null
  fi
fi
exec docker exec "$name" nc -w "$t" "$ip" "$port" </dev/null
"""

# Connects from the host itself (its own network namespace).
_HOST_CONNECT = r"""
ip=$1 port=$2 t=$3
if command -v bash >/dev/null 2>&1; then
  exec timeout "$t" bash -c 'exec 3<>"/dev/tcp/$1/$2"' ferryman-tcp "$ip" "$port"
fi
if command -v nc >/dev/null 2>&1; then exec timeout "$t" nc -w "$t" "$ip" "$port" </dev/null; fi
exec timeout "$t" curl -sS -o /dev/null "telnet://$ip:$port" </dev/null
"""

# "systemd yes|no", then what systemd and the process table say of firewalld.
_FIREWALLD_STATE = r"""
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  echo "systemd yes"
  echo "active $(systemctl is-active firewalld 2>/dev/null)"
  echo "enabled $(systemctl is-enabled firewalld 2>/dev/null)"
else
  echo "systemd no"
fi
if pgrep -x firewalld >/dev/null 2>&1; then echo "process yes"; else echo "process no"; fi
"""

_SAVE_RULESET = 'mkdir -p "$(dirname "$1")" && nft list ruleset > "$1" && wc -l < "$1"'

_MASK_FIREWALLD = (
    'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then '
    'systemctl disable --now firewalld 2>&1; systemctl mask firewalld 2>&1; '
    'else echo "systemd is not running here: nothing to mask"; fi'
)

# df of a path that may not exist yet: the nearest existing parent holds it.
_DF_NEAREST = 'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; exec df -Pk -- "$d"'

_DU = 'for p; do [ -e "$p" ] && du -sk -- "$p"; done; exit 0'

_NGINX_PLACE = (
    'command -v nginx >/dev/null 2>&1 && echo "nginx $(command -v nginx)"; '
    'for d in "$@"; do [ -d "$d" ] && echo "dir $d"; done; exit 0'
)

# Keeps the previous file beside it, then writes stdin in place.
_INSTALL = (
    'if [ -e "$1" ]; then cp -p "$1" "$2" || exit 1; echo "backup $2"; fi; '
    'mkdir -p "$(dirname "$1")" && cat > "$1"'
)
_RESTORE = 'if [ -e "$2" ]; then cat "$2" > "$1"; else rm -f "$1"; fi'


def netns_connect(pid: int, ip: str, port: int, timeout: int, container: str) -> list[str]:
    return ["sh", "-c", _NETNS_CONNECT, "ferryman-probe", str(pid), ip, str(port),
            str(timeout), container]


def host_connect(ip: str, port: int, timeout: int) -> list[str]:
    return ["sh", "-c", _HOST_CONNECT, "ferryman-connect", ip, str(port), str(timeout)]


def firewalld_state() -> list[str]:
    return ["sh", "-c", _FIREWALLD_STATE, "ferryman-firewalld"]


def nft_ruleset() -> list[str]:
    return ["nft", "list", "ruleset"]


def save_ruleset(path: str) -> list[str]:
    return ["sh", "-c", _SAVE_RULESET, "ferryman-nft-save", path]


def delete_table(family: str, name: str) -> list[str]:
    return ["nft", "delete", "table", family, name]


def mask_firewalld() -> list[str]:
    return ["sh", "-c", _MASK_FIREWALLD, "ferryman-mask-firewalld"]


def listeners() -> list[str]:
    return ["ss", "-tlnp"]


def df_nearest(path: str) -> list[str]:
    return ["sh", "-c", _DF_NEAREST, "ferryman-df", path]


def du(paths: Sequence[str]) -> list[str]:
    return ["sh", "-c", _DU, "ferryman-du", *paths]



def uname() -> list[str]:
    return ["uname", "-srm"]







def resolve(name: str) -> list[str]:
    # ahosts asks getaddrinfo once for every family, so /etc/hosts answers for all of them.
    return ["getent", "ahosts", name]


def own_addresses() -> list[str]:
    return ["hostname", "-I"]


def nginx_place(dirs: Sequence[str]) -> list[str]:
    return ["sh", "-c", _NGINX_PLACE, "ferryman-nginx", *dirs]


def install_file(path: str, backup: str) -> list[str]:
    return ["sh", "-c", _INSTALL, "ferryman-install", path, backup]


def restore_file(path: str, backup: str) -> list[str]:
    return ["sh", "-c", _RESTORE, "ferryman-restore", path, backup]


def nginx_test() -> list[str]:
    return ["nginx", "-t"]


# --- logs, leaks, resources, clock, certificates -----------------------------------------

DAEMON_JSON = "/etc/docker/daemon.json"

# When daemon.json last changed and how long dockerd has run: a default written after dockerd
# started is not in force yet. dockerd's own flags (--log-opt ...) count as much as the file.
_DOCKERD_FACTS = r"""
f=$1
echo "now $(date +%s)"
[ -e "$f" ] && echo "mtime $(stat -c %Y "$f")"
pid=$(pgrep -o -x dockerd 2>/dev/null)
if [ -n "$pid" ]; then
  echo "dockerd_elapsed $(ps -o etimes= -p "$pid" | tr -d ' ')"
  echo "dockerd_args $(tr '\0' ' ' < "/proc/$pid/cmdline")"
fi
exit 0
"""

# Size of each log file and of its rotated siblings (NAME.1, NAME.2.gz ...).
_LOG_SIZES = r"""
for p; do
  for f in "$p" "$p".*; do [ -f "$f" ] && stat -c '%s %n' -- "$f"; done
done
exit 0
"""

# Refuses a daemon.json dockerd would not start with, where dockerd can say so (23.0+).
_DOCKERD_VALIDATE = r"""
if dockerd --help 2>&1 | grep -q -e '--validate'; then
  exec dockerd --validate --config-file "$1"
fi
echo "this dockerd cannot validate a configuration file (before Docker 23)"
"""

# Config-like files under the given roots (a root may be a file), each printed after a line
# of \036 and its path; files under 256 KB only (a bigger one is data, not configuration),
# the first SIZE bytes of each, COUNT files at most.
_SCAN = r"""
depth=$1 size=$2 count=$3; shift 3
for r; do
  if [ -f "$r" ]; then printf '%s\n' "$r"
  elif [ -d "$r" ]; then
    find "$r" -maxdepth "$depth" -type f \( -name '*.json' -o -name '*.yml' -o -name '*.yaml' \
      -o -name '*.env' -o -name '.env' -o -name '.env.*' -o -name '*.ini' -o -name '*.conf' \
      -o -name '*.cnf' -o -name '*.cfg' -o -name '*.properties' -o -name '*.toml' \
      -o -name '*.xml' \) -size -256k -not -path '*/node_modules/*' -not -path '*/.git/*' \
      2>/dev/null
  fi
done | sort -u | head -n "$count" | while IFS= read -r f; do
  printf '\036%s\n' "$f"
  head -c "$size" -- "$f"
  printf '\n'
done
exit 0
"""

# Each name, then the addresses the host's resolver (and /etc/hosts) gives it.
_RESOLVE_MANY = r"""
for n; do
  printf '== %s\n' "$n"
  timeout 3 getent ahosts "$n" | cut -d' ' -f1 | sort -u
done
exit 0
"""

# The kernel's OOM lines, from dmesg or the journal; "unreadable" when neither answers.
_KERNEL_OOM = r"""
if out=$(dmesg -T 2>/dev/null) || out=$(dmesg 2>/dev/null); then src=dmesg
elif out=$(journalctl -k -q --no-pager 2>/dev/null); then src=journal
else echo "unreadable"; exit 0; fi
echo "source $src"
printf '%s\n' "$out" | grep -i -E 'oom-kill|out of memory|killed process' | tail -n 60
exit 0
"""

# What keeps the host's clock right, if anything.
_TIME_SYNC = r"""
if command -v timedatectl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  echo "synchronized $(timedatectl show -p NTPSynchronized --value 2>/dev/null)"
fi
for d in chronyd ntpd systemd-timesyncd openntpd; do
  pgrep -x "$d" >/dev/null 2>&1 && echo "daemon $d"
done
exit 0
"""

# nginx's configuration files that name a domain, printed like _SCAN's.
_NGINX_FILES = r"""
domain=$1; shift
command -v nginx >/dev/null 2>&1 && echo "nginx $(command -v nginx)"
for d; do [ -d "$d" ] && grep -rlF -- "$domain" "$d" 2>/dev/null; done | sort -u | head -n 20 |
while IFS= read -r f; do printf '\036%s\n' "$f"; head -c 200000 -- "$f"; printf '\n'; done
exit 0
"""


def dockerd_facts(path: str = DAEMON_JSON) -> list[str]:
    return ["sh", "-c", _DOCKERD_FACTS, "ferryman-dockerd", path]


def log_sizes(paths: Sequence[str]) -> list[str]:
    return ["sh", "-c", _LOG_SIZES, "ferryman-log-sizes", *paths]


def dockerd_validate(path: str) -> list[str]:
    return ["sh", "-c", _DOCKERD_VALIDATE, "ferryman-dockerd-validate", path]


def scan_files(roots: Sequence[str], depth: int = 3, size: int = 65536,
               count: int = 200) -> list[str]:
    return ["sh", "-c", _SCAN, "ferryman-scan", str(depth), str(size), str(count), *roots]


def resolve_many(names: Sequence[str]) -> list[str]:
    return ["sh", "-c", _RESOLVE_MANY, "ferryman-resolve", *names]


def container_stats() -> list[str]:
    return ["docker", "stats", "--no-stream", "--format",
            "{{.Name}}\t{{.ID}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.CPUPerc}}"]


def meminfo() -> list[str]:
    return ["cat", "/proc/meminfo"]


def kernel_oom() -> list[str]:
    return ["sh", "-c", _KERNEL_OOM, "ferryman-kernel-oom"]


def clock() -> list[str]:
    return ["date", "+%s.%N"]


def time_sync() -> list[str]:
    return ["sh", "-c", _TIME_SYNC, "ferryman-time-sync"]


def nginx_files(domain: str, dirs: Sequence[str]) -> list[str]:
    return ["sh", "-c", _NGINX_FILES, "ferryman-nginx-files", domain, *dirs]


def split_files(stdout: str) -> dict[str, str]:
    """path -> text (without its last newline) from what _SCAN and _NGINX_FILES print; split
    on newlines alone: str.splitlines would also split on the \\036 that marks a path."""
    out: dict[str, str] = {}
    path = None
    chunks: list[str] = []
    for line in stdout.removesuffix("\n").split("\n"):
        if line.startswith("\036"):
            if path is not None:
                out[path] = "\n".join(chunks).removesuffix("\n")
            path, chunks = line[1:], []
        elif path is not None:
            chunks.append(line)
    if path is not None:
        out[path] = "\n".join(chunks).removesuffix("\n")
    return out
