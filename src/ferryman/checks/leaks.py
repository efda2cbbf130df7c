"""leaks: values on one environment that name another environment's address (source note
004: "Dev must never write to Prod's Redis/MySQL"; TEST's backend on PROD's database is the
worst kind of pollution, since nothing breaks).

Guards watch the keys the operator listed; this check looks where nobody listed anything:
every container's environment, the env files of compose project folders, the config-like
files (JSON, YAML, .env, ini...) under the containers' bind mounts, and the rest of the
guarded files. A value names another environment when it holds its address (ferryman.yml's
`address` or a host's) or a host name that the host's resolver (its /etc/hosts included)
turns into one of those addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..docker.inspect import ContainerFacts
from ..transport import Result
from . import commands as cc
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok

NAME = "leaks"
MAX_NAMES = 40  # host names resolved per host, at most

IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w]|\.\d)")
URL_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s'\"]*@)?(\[[^\]\s]+\]|[^:/\s'\"?#,;]+)")
ASSIGN = re.compile(r"""["']?([A-Za-z_][\w.-]*)["']?[ \t]*[:=][ \t]*["']?([^"'\s,;#}{]+)""")
HOST_KEY = re.compile(r"(host|hostname|addr|address|server|servers|endpoint|url|uri|dsn)$",
                      re.IGNORECASE)
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")
SECRET_KEY = re.compile(r"pass|secret|token|credential|private", re.IGNORECASE)
HEX_ID = re.compile(r"[0-9a-f]{12}|[0-9a-f]{64}")
SKIP_VARS = {"HOSTNAME", "PATH", "HOME"}
# Bind-mount sources too wide or too special to read through.
SKIP_ROOTS = ("/", "/etc", "/home", "/root", "/usr", "/var", "/opt", "/srv", "/tmp", "/mnt")
SKIP_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker", "/boot",
                 "/etc/localtime", "/etc/timezone", "/usr/", "/lib", "/bin", "/sbin")

PORTS = {3306: "MySQL", 33060: "MySQL", 6379: "Redis", 5432: "PostgreSQL", 27017: "MongoDB",
         9200: "Elasticsearch", 5672: "RabbitMQ", 9000: "MinIO", 9092: "Kafka",
         11211: "Memcached", 1433: "SQL Server", 1521: "Oracle", 7687: "Neo4j"}
WORDS = {"mysql": "MySQL", "mariadb": "MySQL", "redis": "Redis", "postgres": "PostgreSQL",
         "pg": "PostgreSQL", "mongo": "MongoDB", "elastic": "Elasticsearch", "es": "Elasticsearch",
         "rabbit": "RabbitMQ", "amqp": "RabbitMQ", "minio": "MinIO", "s3": "MinIO",
         "kafka": "Kafka", "memcache": "Memcached", "celery": "Redis", "db": "database"}


@dataclass
class Hit:
    """A value that names another environment."""

    source: str  # "env" or "file"
    where: str  # container or file path
    key: str  # variable name, or the key on the line ("" when none)
    line: int | None
    text: str  # the line or KEY=VALUE, passwords masked
    address: str  # what it names: an address, or a host name that resolves to one
    env: str  # the environment that address belongs to
    target: str  # that environment's address from ferryman.yml
    via: str | None = None  # the address `address` resolves to, when it is a name
    kind: str | None = None  # MySQL, Redis... when the port or the key says so

    @property
    def subject(self) -> str:
        return f"{self.where} {self.key}" if self.source == "env" else f"{self.where}:{self.line}"


@dataclass
class Scope:
    """What was read: for the OK finding and the data."""

    values: int = 0
    files: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)


def is_loopback(address: str) -> bool:
    text = address.strip("[]").lower()
    if text in ("localhost", "local", ""):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def env_addresses(cfg: Config, env: str) -> set[str]:
    spec = cfg.environments[env]
    found = {spec.own_address, *(h.hostname for h in spec.hosts if not h.is_local)}
    return {a.lower() for a in found if a and not is_loopback(a)}


def targets(cfg: Config, own: str) -> dict[str, str]:
    """Every other environment's addresses (lower case) -> that environment. An address
    two environments share (two test hosts on one machine) names neither."""
    mine = env_addresses(cfg, own)
    out: dict[str, str] = {}
    for name in cfg.environments:
        if name != own:
            for a in env_addresses(cfg, name) - mine:
                out.setdefault(a, name)
    return out


def mask(text: str, key: str = "") -> str:
    text = URL_PASSWORD.sub(r"\1***@", text)
    if key and SECRET_KEY.search(key) and "=" in text:
        head, _, _ = text.partition("=")
        return f"{head}=***"
    return text


def names_in(text: str, key: str = "") -> set[str]:
    """Host names in `text` worth asking the resolver about: URL hosts, and the values of
    keys that hold an address (DB_HOST, redis.host, *_URL...)."""
    out = {m.group(1).strip("[]") for m in URL_HOST.finditer(text)}
    pairs = [(key, text)] if key else [(m.group(1), m.group(2)) for m in ASSIGN.finditer(text)]
    for k, v in pairs:
        last = re.split(r"[._-]", k)[-1] if k else ""
        if k and (HOST_KEY.search(k) or HOST_KEY.fullmatch(last)) and "://" not in v:
            out.add(v.rsplit("@", 1)[-1].split(":", 1)[0].split("/", 1)[0])
    return {n.lower() for n in out if HOSTNAME.fullmatch(n) and not is_ip(n)
            and not is_loopback(n) and not HEX_ID.fullmatch(n.lower())}


def literal(text: str, addresses: Iterable[str]) -> list[str]:
    """The addresses of `addresses` that `text` holds as a whole token."""
    low = text.lower()
    out = []
    for a in addresses:
        if re.search(rf"(?<![\w.-]){re.escape(a)}(?![\w-]|\.\w)", low):
            out.append(a)
    return out


def kind_of(text: str, address: str, key: str = "") -> str | None:
    port = re.search(rf"{re.escape(address)}:(\d{{2,5}})", text, re.IGNORECASE)
    if port and int(port.group(1)) in PORTS:
        return f"{PORTS[int(port.group(1))]}, port {port.group(1)}"
    scheme = re.search(rf"([A-Za-z][A-Za-z0-9+]*)://[^\s]*{re.escape(address)}", text,
                       re.IGNORECASE)
    words = re.split(r"[^a-z0-9]+", f"{key} {scheme.group(1) if scheme else ''}".lower())
    for w in words:
        for stem, kind in WORDS.items():
            if w == stem or (len(stem) > 2 and w.startswith(stem)):
                return kind
    return None


def parse_resolved(stdout: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            name = line[3:].strip().lower()
            out[name] = set()
        elif name is not None and line.strip():
            out[name].add(line.strip().lower())
    return out


def find_hits(source: str, where: str, key: str, line: int | None, text: str,
              addr_env: dict[str, str], resolved: dict[str, set[str]],
              cfg_address: dict[str, str]) -> list[Hit]:
    """The hits in one value or line. `addr_env`: address -> environment, IPs that names of
    other environments resolve to included; `cfg_address`: environment -> its address."""
    hits = []
    shown = mask(text, key)
    for a in literal(text, addr_env):
        env = addr_env[a]
        hits.append(Hit(source, where, key, line, shown, a, env, cfg_address[env],
                        kind=kind_of(text, a, key)))
    named = {h.address for h in hits}
    # A variable's value is all value; a file's line is parsed for its key and value.
    names = names_in(text.partition("=")[2], key) if source == "env" else names_in(text)
    for n in sorted(names - named):
        for ip in sorted(resolved.get(n, set())):
            if ip in addr_env:
                env = addr_env[ip]
                hits.append(Hit(source, where, key, line, shown, n, env, cfg_address[env],
                                via=ip, kind=kind_of(text, n, key)))
                break
    return hits


def file_hits(path: str, text: str, addr_env: dict[str, str], resolved: dict[str, set[str]],
              cfg_address: dict[str, str], skip_keys: set[str]) -> list[Hit]:
    if "\0" in text:
        return []  # not a text file
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if any(f'"{k}"' in line or re.match(rf"\s*{re.escape(k)}\s*[:=]", line)
               for k in skip_keys):
            continue  # a guard watches this key: the guards check reports it
        m = ASSIGN.search(line)
        key = m.group(1) if m else ""
        out += find_hits("file", path, key, n, line.strip(), addr_env, resolved, cfg_address)
    return out


def scan_roots(facts: Iterable[ContainerFacts], extra: Iterable[str]) -> list[str]:
    """Folders and files to read: bind mounts (not system paths), compose project folders,
    and the given (guarded) files."""
    roots = set(extra)
    for f in facts:
        for m in f.raw.get("Mounts") or []:
            src = (m.get("Source") or "").rstrip("/") or "/"
            if m.get("Type") != "bind" or src in SKIP_ROOTS or src.startswith(SKIP_PREFIXES):
                continue
            roots.add(src)
        if f.compose is not None and f.compose.working_dir:
            roots.add(f.compose.working_dir)
    return sorted(roots)


def _fix(hit: Hit, facts: ContainerFacts | None, own: str, env: str) -> Fix:
    what = hit.kind.split(",")[0] if hit.kind else "service"
    if hit.source == "env":
        where = ("the compose file or its env file" if facts is not None and facts.compose
                 else "its `docker run -e`")
        return Fix(f"point {hit.key} at {env}'s own {what} ({own} or a name of {env}'s) in "
                   f"{where}, then recreate {hit.where}: a release copies env values as "
                   "they are")
    guard = (" A guard in ferryman.yml (guards: file, key) keeps a JSON file so on every "
             "release." if hit.where.endswith(".json") else "")
    return Fix(f"edit {hit.where} line {hit.line} to name {env}'s own {what} ({own}), then "
               f"restart what reads it.{guard}")


def summary(hit: Hit, env: str) -> str:
    kind = f" ({hit.kind})" if hit.kind else ""
    via = (f"{hit.address} resolves to {hit.via}, {hit.env}'s address" if hit.via else
           f"names {hit.env}'s address {hit.address}")
    # The subject says where (container and variable, or file and line).
    return (f"{hit.text}: {via}{kind}: {env} works on {hit.env}'s "
            f"{hit.kind.split(',')[0] if hit.kind else 'services'}")


async def run(ctx: HostContext) -> list[Finding]:
    cfg = ctx.cfg
    addr_env = targets(cfg, ctx.env)
    if not addr_env:
        return [ok(NAME, "-", "no other environment has an address of its own in "
                   "ferryman.yml to look for")]
    cfg_address = {n: e.own_address for n, e in cfg.environments.items()}
    inspected, facts = await ctx.all_containers()
    names = sorted(facts)
    guards = [g for g in cfg.guards if g.applies_to(ctx.env)]
    roots = scan_roots(facts.values(), [g.file for g in guards])
    scanned = await ctx.run(cc.scan_files(roots), timeout=60) if roots else None
    files = cc.split_files(scanned.stdout) if scanned else {}
    values = [(f.name, e) for f in facts.values()
              for e in (f.raw.get("Config") or {}).get("Env") or []]

    # One resolver call for every name worth asking: names in values, other envs' names.
    wanted = {a for a in addr_env if not is_ip(a)}
    for _, entry in values:
        key, _, value = entry.partition("=")
        if key not in SKIP_VARS:
            wanted |= names_in(value, key)
    for text in files.values():
        if "\0" not in text:
            wanted |= names_in(text)
    wanted -= set(names) | {n.lower() for n in names}
    ask = sorted(wanted)[:MAX_NAMES]
    res_r = await ctx.run(cc.resolve_many(ask), timeout=10 + 4 * len(ask)) if ask else None
    resolved = parse_resolved(res_r.stdout) if res_r else {}
    for a in list(addr_env):
        for ip in resolved.get(a, set()):
            addr_env.setdefault(ip, addr_env[a])

    hits: list[Hit] = []
    for cname, entry in values:
        key, _, value = entry.partition("=")
        if key not in SKIP_VARS:
            hits += find_hits("env", cname, key, None, entry, addr_env, resolved, cfg_address)
    skip = {g.file: {g.key_path[-1]} for g in guards}
    for path, text in sorted(files.items()):
        hits += file_hits(path, text, addr_env, resolved, cfg_address, skip.get(path, set()))

    scope = Scope(len(values), sorted(files), roots)
    if not hits:
        return [ok(NAME, "-", f"nothing names another environment: {scope.values} env "
                   f"values of {len(facts)} containers, {len(scope.files)} config files under "
                   f"{len(roots)} folders and files", data={"files": scope.files,
                                                           "roots": roots})]
    out = []
    seen = set()
    for hit in hits:
        if (hit.subject, hit.address) in seen:
            continue
        seen.add((hit.subject, hit.address))
        ev = [_evidence(ctx, hit, inspected, scanned)]
        if hit.via and res_r is not None:
            ev.append(ctx.evidence(res_r, f"== {hit.address}\n{hit.via}"))
        data: dict[str, Any] = {"source": hit.source, "where": hit.where, "key": hit.key,
                                "line": hit.line, "text": ctx.redactor.text(hit.text),
                                "names": hit.env, "address": hit.address, "via": hit.via,
                                "kind": hit.kind}
        out.append(fail(NAME, hit.subject, ctx.redactor.text(summary(hit, ctx.env)),
                        evidence=ev, data=data,
                        fix=_fix(hit, facts.get(hit.where), ctx.own_address, ctx.env)))
    return out


def _evidence(ctx: HostContext, hit: Hit, inspected: Result | None,
              scanned: Result | None) -> Evidence:
    if hit.source == "env" and inspected is not None:
        return ctx.evidence(inspected, f"{hit.where}: Config.Env {hit.text}")
    if scanned is not None:
        return ctx.evidence(scanned, f"{hit.where}:{hit.line}: {hit.text}")
    return Evidence(hit.where, hit.text)
