"""Recreating a container the way it was started, with a new image, from `docker inspect`.

A Config field goes into the new command only where the operator set it, i.e. where the
container's value differs from the OLD image's default; everything else then comes from the
new image, so a release that moves its CMD or WORKDIR is not pinned to the old one. HostConfig,
mounts and networks are always the operator's and are copied whole, mounts in the form the
operator gave them (-v or --mount). Pure functions: the caller runs the argv lists (never
through a shell) and reports `carried`.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Json = dict[str, Any]
Rewrite = Callable[[str], str]

COMPOSE_LABELS = "com.docker.compose."
DEFAULT_SHM = 64 * 1024 * 1024
_DEFAULT_IPC = ("", "private", "shareable")
_DEFAULT_PROPAGATION = ("", "rprivate")
_DEFAULT_BRIDGE = ("", "default", "bridge")


@dataclass
class RunSpec:
    name: str
    create: list[str]  # ["docker", "create", "--name", NAME, ..., IMAGE, *cmd]
    connects: list[list[str]] = field(default_factory=list)  # `docker network connect` argv
    carried: list[str] = field(default_factory=list)  # values copied as they were, rewrites

    def command_lines(self) -> list[str]:
        """Each argv quoted for a human (dry runs, logs); never for a shell to run."""
        return [shlex.join(argv) for argv in (self.create, *self.connects)]


@dataclass
class _Carry:
    """Applies `rewrite` to values and notes every value it changed."""

    rewrite: Rewrite | None
    notes: list[str] = field(default_factory=list)

    def value(self, what: str, value: str) -> str:
        if self.rewrite is None:
            return value
        new = self.rewrite(value)
        if new != value:
            self.notes.append(f"{what}: {value} -> {new}")
        return new


def run_spec(container: Json, old_image: Json | None, new_image: str, *, name: str | None = None,
             rewrite: Rewrite | None = None, env: Mapping[str, str] | None = None) -> RunSpec:
    """The `docker create` (and `docker network connect`) argv that recreates `container`
    from `new_image`. `old_image` is `docker image inspect` of the image the container was
    created from; None means unknown, and then every Config value counts as the operator's.
    `env`: variables set to these values whatever the container had (the environment's own)."""
    config: Json = container.get("Config") or {}
    host: Json = container.get("HostConfig") or {}
    image: Json | None = None if old_image is None else old_image.get("Config") or {}
    name = name or (container.get("Name") or "").lstrip("/")
    carry = _Carry(rewrite)
    mode = host.get("NetworkMode") or "default"
    own_net = not _shares_netns(mode)

    net_args, connects = _networks(container, name)
    # Under --network host the engine discards published ports; there are none to carry.
    port_args, port_notes = _ports(host) if own_net and mode != "host" else ([], [])
    mount_args, mount_notes = _mounts(container)
    args = [
        *net_args,
        *port_args,
        *mount_args,
        *_tmpfs(host),
        *_restart(host.get("RestartPolicy") or {}),
        *(_identity(container, carry) if own_net else []),
        *_logging(host.get("LogConfig") or {}),
        *_security(host),
        *_resources(host),
        *_namespaces(host),
        *_env(config, image, carry, env),
        *_labels(config, image, carry),
        *_user_and_dirs(config, image, _mount_dests(container), host, expose=own_net),
        *_health(config.get("Healthcheck"), None if image is None else image.get("Healthcheck")),
        *_stop(config, image),
    ]
    entry_args, tail = _command(config, image, carry)  # last: its notes come last too
    create = ["docker", "create", "--name", name, *args, *entry_args, new_image, *tail]
    return RunSpec(name, create, connects, [*mount_notes, *port_notes, *carry.notes])


def _shares_netns(mode: str) -> bool:
    """True when the network namespace is someone else's: hostname, DNS, extra hosts and
    ports are then not the container's to set (the engine refuses them)."""
    return mode.startswith("container:")


def _flags(flag: str, values: Iterable[Any]) -> list[str]:
    return [part for value in values for part in (flag, str(value))]


# --- networks ---------------------------------------------------------------------------------

def _networks(container: Json, name: str) -> tuple[list[str], list[list[str]]]:
    """`--network` and friends for the first network; `docker network connect` for the rest."""
    mode = (container.get("HostConfig") or {}).get("NetworkMode") or "default"
    if mode in ("host", "none") or _shares_netns(mode):
        return ["--network", mode], []
    networks: Json = (container.get("NetworkSettings") or {}).get("Networks") or {}
    if not networks:
        return [], []
    config = container.get("Config") or {}
    # The engine adds the short id and the hostname as aliases on user networks by itself.
    automatic = {container.get("Id", "")[:12], config.get("Hostname") or ""}
    first = _first_network(mode, networks)
    args: list[str] = []
    if first != "bridge":
        args = ["--network", first, *_endpoint(networks[first], automatic, "--network-alias")]
    if config.get("MacAddress"):
        args += ["--mac-address", config["MacAddress"]]
    connects = [["docker", "network", "connect",
                 *_endpoint(networks[net], automatic, "--alias"), net, name]
                for net in networks if net != first]
    return args, connects


def _first_network(mode: str, networks: Json) -> str:
    """The network given to `docker create`: NetworkMode names it (by name or id)."""
    if mode in _DEFAULT_BRIDGE:
        mode = "bridge"
    if mode in networks:
        return mode
    for net, endpoint in networks.items():
        if ((endpoint or {}).get("NetworkID") or "").startswith(mode):
            return net
    # Disconnected from the network it was created on: any other one will do.
    return sorted(networks)[0]


def _endpoint(endpoint: Json | None, automatic: set[str], alias_flag: str) -> list[str]:
    endpoint = endpoint or {}
    aliases = [a for a in dict.fromkeys(endpoint.get("Aliases") or []) if a not in automatic]
    ipam = endpoint.get("IPAMConfig") or {}  # static addresses only, not the assigned ones
    return [
        *_flags(alias_flag, aliases),
        *(["--ip", ipam["IPv4Address"]] if ipam.get("IPv4Address") else []),
        *(["--ip6", ipam["IPv6Address"]] if ipam.get("IPv6Address") else []),
        *_flags("--link-local-ip", ipam.get("LinkLocalIPs") or []),
    ]


def _ports(host: Json) -> tuple[list[str], list[str]]:
    args: list[str] = []
    notes: list[str] = []
    for key, bindings in (host.get("PortBindings") or {}).items():
        port, _, proto = key.partition("/")
        suffix = "" if proto in ("", "tcp") else f"/{proto}"
        for binding in bindings or [{}]:
            spec = _publish(binding.get("HostIp") or "", binding.get("HostPort") or "", port)
            args += ["-p", spec + suffix]
            notes.append(f"published port {spec}{suffix}")
    if host.get("PublishAllPorts"):
        args.append("-P")
    return args, notes


def _publish(ip: str, host_port: str, port: str) -> str:
    """An empty HostIp means every interface; an empty HostPort a random one."""
    if not ip:
        return f"{host_port}:{port}" if host_port else port
    if ":" in ip:
        ip = f"[{ip}]"
    return f"{ip}:{host_port}:{port}"


# --- mounts -----------------------------------------------------------------------------------

def _mount_dests(container: Json) -> set[str]:
    dests = {m.get("Destination", "") for m in container.get("Mounts") or []}
    return dests | set((container.get("HostConfig") or {}).get("Tmpfs") or {})


def _binds(host: Json) -> tuple[list[str], set[str], list[str]]:
    """`-v` for every HostConfig.Binds entry, written back as the operator wrote it (mode
    options included): a `-v` bind creates a missing host folder where `--mount` fails, and
    tools that read Binds keep seeing it. Returns (args, their destinations, notes)."""
    args: list[str] = []
    dests: set[str] = set()
    notes: list[str] = []
    for entry in host.get("Binds") or []:
        src, _, rest = entry.partition(":")
        dest, _, mode = rest.partition(":")
        if not dest:
            continue
        args += ["-v", entry]
        dests.add(dest)
        if src.startswith("/"):
            ro = " (read-only)" if "ro" in mode.split(",") else ""
            notes.append(f"bind mount {src} at {dest}{ro}")
    return args, dests, notes


def _mounts(container: Json) -> tuple[list[str], list[str]]:
    """Every mount in `Mounts`, in the form it was given: `-v` for HostConfig.Binds entries,
    `--mount` for the rest (HostConfig.Mounts, anonymous and inherited volumes).

    In --mount form paths with ':' stay whole. Volumes go by name, anonymous ones too, so the
    new container gets the same data. Mounts inherited through --volumes-from are listed in
    `Mounts` as well, so they are passed one by one and --volumes-from is not needed.
    """
    host = container.get("HostConfig") or {}
    args, bound, notes = _binds(host)
    options = {m.get("Target", ""): m for m in host.get("Mounts") or []}
    flags = set(host.get("Tmpfs") or {})  # --tmpfs mounts are passed by _tmpfs
    for mount in container.get("Mounts") or []:
        kind, dest = mount.get("Type"), mount.get("Destination", "")
        if dest in bound:
            continue
        extra = options.get(dest) or {}
        ro = [] if mount.get("RW", True) else ["readonly"]
        if kind == "bind":
            src = mount.get("Source", "")
            prop = mount.get("Propagation") or ""
            fields = ["type=bind", f"src={src}", f"dst={dest}", *ro,
                      *([f"bind-propagation={prop}"] if prop not in _DEFAULT_PROPAGATION else [])]
            notes.append(f"bind mount {src} at {dest}" + (" (read-only)" if ro else ""))
        elif kind == "volume":
            nocopy = (extra.get("VolumeOptions") or {}).get("NoCopy")
            fields = ["type=volume", f"src={mount.get('Name', '')}", f"dst={dest}", *ro,
                      *(["volume-nocopy"] if nocopy else [])]
        elif kind == "tmpfs" and dest not in flags:
            tmpfs = extra.get("TmpfsOptions") or {}
            fields = ["type=tmpfs", f"dst={dest}",
                      *([f"tmpfs-size={tmpfs['SizeBytes']}"] if tmpfs.get("SizeBytes") else []),
                      *([f"tmpfs-mode={tmpfs['Mode']:04o}"] if tmpfs.get("Mode") else [])]
        else:
            continue
        args += ["--mount", _csv(fields)]
    return args, notes


def _csv(fields: list[str]) -> str:
    """--mount is read as one CSV record: a field holding ',' or '"' must be quoted."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()[:-1]


def _tmpfs(host: Json) -> list[str]:
    return _flags("--tmpfs", [f"{path}:{opts}" if opts else path
                              for path, opts in (host.get("Tmpfs") or {}).items()])


# --- host config ------------------------------------------------------------------------------

def _restart(policy: Json) -> list[str]:
    kind = policy.get("Name") or "no"
    if kind == "no":
        return []
    retries = policy.get("MaximumRetryCount") or 0
    if kind == "on-failure" and retries:
        return ["--restart", f"on-failure:{retries}"]
    return ["--restart", kind]


def _identity(container: Json, carry: _Carry) -> list[str]:
    """Hostname, domain name and name resolution: all of the container's own netns."""
    config = container.get("Config") or {}
    host = container.get("HostConfig") or {}
    hostname = config.get("Hostname") or ""
    # The default hostname is the short id; under --network host it is the host's own name.
    default = hostname == container.get("Id", "")[:12] or host.get("NetworkMode") == "host"
    hosts = []
    for entry in host.get("ExtraHosts") or []:
        hostname_part, sep, addr = entry.partition(":")
        hosts.append(hostname_part + sep + carry.value(f"extra-host {hostname_part}", addr))
    return [
        *([] if default or not hostname else ["--hostname", hostname]),
        *(["--domainname", config["Domainname"]] if config.get("Domainname") else []),
        *_flags("--add-host", hosts),
        *_flags("--dns", host.get("Dns") or []),
        *_flags("--dns-search", host.get("DnsSearch") or []),
        *_flags("--dns-option", host.get("DnsOptions") or []),
        *_flags("--link", [_link(link) for link in host.get("Links") or []]),
    ]


def _link(link: str) -> str:
    """"/db:/web/db" as the engine stores it -> "db:db" as --link takes it."""
    target, _, alias = link.partition(":")
    return f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}" if alias else target.lstrip("/")


def _logging(log: Json) -> list[str]:
    kind = log.get("Type") or ""
    opts = log.get("Config") or {}
    # json-file without options is the daemon default; leaving it out keeps the host's own.
    if not kind or (kind == "json-file" and not opts):
        return []
    return ["--log-driver", kind, *_flags("--log-opt", [f"{k}={v}" for k, v in opts.items()])]


def _security(host: Json) -> list[str]:
    devices = [f"{d.get('PathOnHost', '')}:{d.get('PathInContainer', '')}"
               + (f":{d['CgroupPermissions']}" if d.get("CgroupPermissions") else "")
               for d in host.get("Devices") or []]
    return [
        *(["--privileged"] if host.get("Privileged") else []),
        *_flags("--cap-add", host.get("CapAdd") or []),
        *_flags("--cap-drop", host.get("CapDrop") or []),
        *_flags("--device", devices),
        *_flags("--device-cgroup-rule", host.get("DeviceCgroupRules") or []),
        *_flags("--security-opt", host.get("SecurityOpt") or []),
        *(["--read-only"] if host.get("ReadonlyRootfs") else []),
        *_flags("--group-add", host.get("GroupAdd") or []),
        *(["--init"] if host.get("Init") else []),
        *(["--rm"] if host.get("AutoRemove") else []),
    ]


def _resources(host: Json) -> list[str]:
    memory = host.get("Memory") or 0
    swap = host.get("MemorySwap") or 0
    swappiness = host.get("MemorySwappiness")
    shm = host.get("ShmSize") or 0
    ulimits = [f"{u['Name']}={u['Soft']}:{u['Hard']}" for u in host.get("Ulimits") or []]
    plain = [  # flag, value; zero means unset
        ("--memory", memory),
        ("--memory-reservation", host.get("MemoryReservation")),
        # The engine sets twice --memory by itself when only --memory is given.
        ("--memory-swap", 0 if swap == 2 * memory else swap),
        ("--cpus", _cpus(host.get("NanoCpus") or 0)),
        ("--cpu-shares", host.get("CpuShares")),
        ("--cpu-period", host.get("CpuPeriod")),
        ("--cpu-quota", host.get("CpuQuota")),
        ("--cpuset-cpus", host.get("CpusetCpus")),
        ("--cpuset-mems", host.get("CpusetMems")),
        ("--blkio-weight", host.get("BlkioWeight")),
        ("--pids-limit", max(host.get("PidsLimit") or 0, 0)),
        ("--oom-score-adj", host.get("OomScoreAdj")),
        ("--shm-size", 0 if shm == DEFAULT_SHM else shm),
        ("--cgroup-parent", host.get("CgroupParent")),
    ]
    return [
        *[part for flag, value in plain if value for part in (flag, str(value))],
        *(["--memory-swappiness", str(swappiness)]
          if swappiness is not None and swappiness >= 0 else []),
        *(["--oom-kill-disable"] if host.get("OomKillDisable") else []),
        *_flags("--ulimit", ulimits),
        *_flags("--sysctl", [f"{k}={v}" for k, v in (host.get("Sysctls") or {}).items()]),
        *_flags("--storage-opt", [f"{k}={v}" for k, v in (host.get("StorageOpt") or {}).items()]),
    ]


def _cpus(nano: int) -> str:
    """NanoCpus as --cpus takes it: 1500000000 -> "1.5", exactly."""
    if not nano:
        return ""
    text = format(Decimal(nano) / Decimal(10**9), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _namespaces(host: Json) -> list[str]:
    ipc = host.get("IpcMode") or ""
    runtime = host.get("Runtime") or ""
    return [
        *(["--pid", host["PidMode"]] if host.get("PidMode") else []),
        *([] if ipc in _DEFAULT_IPC else ["--ipc", ipc]),
        *(["--uts", host["UTSMode"]] if host.get("UTSMode") else []),
        *(["--userns", host["UsernsMode"]] if host.get("UsernsMode") else []),
        *([] if runtime in ("", "runc") else ["--runtime", runtime]),
    ]


# --- config: only what differs from the old image ---------------------------------------------

def _env(config: Json, image: Json | None, carry: _Carry,
         values: Mapping[str, str] | None = None) -> list[str]:
    """The operator's env entries (not the old image's defaults); `values` replace or add
    entries, never rewritten: they are the target's own."""
    defaults = set((image or {}).get("Env") or [])
    values = values or {}
    args: list[str] = []
    for entry in config.get("Env") or []:
        key, sep, value = entry.partition("=")
        if entry in defaults or key in values:
            continue
        args += ["-e", (key + sep + carry.value(f"env {key}", value)) if sep else key]
    for key, value in values.items():
        args += ["-e", f"{key}={value}"]
    return args


def _labels(config: Json, image: Json | None, carry: _Carry) -> list[str]:
    defaults = (image or {}).get("Labels") or {}
    args: list[str] = []
    for key, value in (config.get("Labels") or {}).items():
        if key.startswith(COMPOSE_LABELS) or (key in defaults and defaults[key] == value):
            continue
        args += ["--label", f"{key}={carry.value(f'label {key}', value)}"]
    return args


def _differs(config: Json, image: Json | None, key: str) -> bool:
    return image is None or (config.get(key) or None) != (image.get(key) or None)


def _user_and_dirs(config: Json, image: Json | None, mounted: set[str], host: Json, *,
                   expose: bool) -> list[str]:
    args: list[str] = []
    if config.get("User") and _differs(config, image, "User"):
        args += ["--user", config["User"]]
    if config.get("WorkingDir") and _differs(config, image, "WorkingDir"):
        args += ["--workdir", config["WorkingDir"]]
    # Publishing a port exposes it too; only the extra ones need --expose.
    known = set((image or {}).get("ExposedPorts") or {}) | set(host.get("PortBindings") or {})
    if expose:
        args += _flags("--expose", [p.removesuffix("/tcp")
                                    for p in config.get("ExposedPorts") or {} if p not in known])
    declared = set((image or {}).get("Volumes") or {}) | mounted
    args += _flags("-v", [v for v in config.get("Volumes") or {} if v not in declared])
    if config.get("Tty"):
        args.append("-t")
    if config.get("OpenStdin"):
        args.append("-i")
    return args


_HEALTH_TIMES = (("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                 ("StartPeriod", "--health-start-period"),
                 ("StartInterval", "--health-start-interval"))


def _health(check: Json | None, image_check: Json | None) -> list[str]:
    """The engine fills unset fields from the image's check, so each field is compared alone;
    Test ["NONE"] is --no-healthcheck."""
    check, image_check = check or {}, image_check or {}
    test = check.get("Test") or []
    if test == ["NONE"]:
        return [] if image_check.get("Test") == ["NONE"] else ["--no-healthcheck"]
    args: list[str] = []
    if test and test != image_check.get("Test"):
        # The CLI only writes CMD-SHELL; an exec-form test is joined into one shell line.
        command = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
        args += ["--health-cmd", command]
    for key, flag in _HEALTH_TIMES:
        if check.get(key) and check.get(key) != image_check.get(key):
            args += [flag, _duration(check[key])]
    if check.get("Retries") and check.get("Retries") != image_check.get("Retries"):
        args += ["--health-retries", str(check["Retries"])]
    return args


def _duration(ns: int) -> str:
    """Nanoseconds as a Go duration the CLI parses: 5000000000 -> "5s"."""
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _stop(config: Json, image: Json | None) -> list[str]:
    args: list[str] = []
    if config.get("StopSignal") and _differs(config, image, "StopSignal"):
        args += ["--stop-signal", config["StopSignal"]]
    if config.get("StopTimeout") is not None and _differs(config, image, "StopTimeout"):
        args += ["--stop-timeout", str(config["StopTimeout"])]
    return args


def _command(config: Json, image: Json | None, carry: _Carry) -> tuple[list[str], list[str]]:
    """(--entrypoint flag, words after the image).

    --entrypoint takes one word: the rest of a longer entrypoint goes before the cmd. Given an
    entrypoint the engine drops the image's CMD, so the cmd is then always passed in full.
    """
    entry: list[str] = config.get("Entrypoint") or []
    cmd: list[str] = config.get("Cmd") or []
    if image is None:
        # Unknown image: an empty entrypoint is kept empty, so a new image's cannot wrap cmd.
        entry_set, cmd_set = bool(entry or cmd), bool(cmd)
    else:
        entry_set = entry != (image.get("Entrypoint") or [])
        cmd_set = cmd != (image.get("Cmd") or [])
    if not entry_set and not cmd_set:
        return [], []
    words = [carry.value("entrypoint word", w) for w in entry] if entry_set else []
    tail = [*words[1:], *(carry.value("cmd word", w) for w in cmd)]
    return (["--entrypoint", words[0] if words else ""] if entry_set else []), tail


def log_flags(log: Json) -> list[str]:
    """The `--log-driver`/`--log-opt` flags a recreated container carries for `LogConfig`."""
    return _logging(log)
