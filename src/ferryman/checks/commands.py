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
