"""The `ferryman.yml` schema: pydantic models plus the checks that span several sections."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .backups import Offsite, Restic, Schedule, cross_issues

# Error type used by our own validators; its message is the "expected ..." text verbatim.
ISSUE_TYPE = "ferryman"
ADDRESS_EXPECTED = "user@host[:port] or 'local'"
DURATION_EXPECTED = "seconds or a duration like 30s, 2m"
MASK = "***"


def _fail(expected: str) -> PydanticCustomError:
    return PydanticCustomError(ISSUE_TYPE, expected)


# --- durations ------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "500ms", "30s", "1m30s"."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if text and re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
                seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise _fail(DURATION_EXPECTED)
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


# --- addresses ------------------------------------------------------------------------

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")


@dataclass(frozen=True)
class Address:
    """A parsed `user@host:port` (user and port optional), or the operator's own machine."""

    user: str | None
    hostname: str
    port: int | None
    is_local: bool = False


LOCAL = Address(user=None, hostname="localhost", port=None, is_local=True)


def parse_address(text: str, *, allow_local: bool = True) -> Address:
    """Parse an SSH address; raises ValueError with the accepted syntax as message."""
    if text == "local":
        if allow_local:
            return LOCAL
        raise ValueError("user@host[:port] (not 'local')")
    user: str | None = None
    rest = text
    if "@" in text:
        user, rest = text.split("@", 1)
        if not _USER.fullmatch(user):
            raise ValueError(ADDRESS_EXPECTED)
    port_text: str | None = None
    if rest.startswith("["):
        # Bracketed IPv6, the only way to give an IPv6 address a port.
        host, sep, after = rest[1:].partition("]")
        if not sep or not _is_ipv6(host):
            raise ValueError(ADDRESS_EXPECTED)
        if after:
            if not after.startswith(":"):
                raise ValueError(ADDRESS_EXPECTED)
            port_text = after[1:]
    elif rest.count(":") > 1:
        host = rest  # bare IPv6, no port possible
        if not _is_ipv6(host):
            raise ValueError(ADDRESS_EXPECTED)
    else:
        host, sep, after = rest.partition(":")
        if sep:
            port_text = after
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(ADDRESS_EXPECTED)
    port = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{ADDRESS_EXPECTED}, with a port from 1 to 65535")
        port = int(port_text)
    return Address(user=user, hostname=host, port=port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _address(value: str) -> str:
    try:
        parse_address(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return value


def _jump(value: str) -> str:
    try:
        parse_address(value, allow_local=False)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return value


def _expand_user(value: str | None) -> str | None:
    return os.path.expanduser(value) if value is not None else None


# --- small string types ---------------------------------------------------------------


def _pattern(regex: str, expected: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _fail(expected)
        return value

    return AfterValidator(check)


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise _fail("an absolute path (starting with /)")
    return value


ENV_NAME_RE = r"[a-z][a-z0-9_-]*"
SERVICE_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
EnvName = Annotated[
    str, _pattern(ENV_NAME_RE, "an environment name: lowercase letter, then [a-z0-9_-]")
]
ServiceName = Annotated[
    str, _pattern(SERVICE_NAME_RE, "a service name: letter or digit, then [A-Za-z0-9_.-]")
]
# Docker's own rule for container and volume names.
DockerName = Annotated[
    str, _pattern(SERVICE_NAME_RE, "a Docker name: letter or digit, then [A-Za-z0-9_.-]")
]
AbsolutePath = Annotated[str, AfterValidator(_absolute)]
VarName = Annotated[
    str, _pattern(r"[A-Za-z_][A-Za-z0-9_]*", "a variable name: letter or _, then [A-Za-z0-9_]")
]
EnvValues = dict[VarName, str]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- models ---------------------------------------------------------------------------


class SshDefaults(_Model):
    known_hosts: str | None = None
    accept_unknown_hosts: bool = False
    connect_timeout: Duration = 10.0
    command_timeout: Duration = 600.0  # each command; a stream's longest silence
    # A host that stops answering is given up after interval x (count_max + 1); 0: no keepalive.
    keepalive_interval: Duration = 15.0
    keepalive_count_max: int = Field(3, ge=1)

    @field_validator("known_hosts")
    @classmethod
    def _expand(cls, value: str | None) -> str | None:
        return _expand_user(value)


class HostSpec(_Model):
    address: Annotated[str, AfterValidator(_address)]
    name: NonEmpty | None = None
    identity_file: str | None = None
    jump: Annotated[str, AfterValidator(_jump)] | None = None
    password: SecretStr | None = None
    known_hosts: str | None = None
    accept_unknown_host_key: bool | None = None  # None: inherit ssh.accept_unknown_hosts

    @field_validator("identity_file", "known_hosts")
    @classmethod
    def _expand(cls, value: str | None) -> str | None:
        return _expand_user(value)

    @property
    def parsed(self) -> Address:
        return parse_address(self.address)

    @property
    def user(self) -> str | None:
        return self.parsed.user

    @property
    def hostname(self) -> str:
        return self.parsed.hostname

    @property
    def port(self) -> int | None:
        return self.parsed.port

    @property
    def is_local(self) -> bool:
        return self.parsed.is_local

    @property
    def jump_address(self) -> Address | None:
        return parse_address(self.jump, allow_local=False) if self.jump else None

    @property
    def label(self) -> str:
        """How services, logs and messages name this host."""
        if self.name:
            return self.name
        return "local" if self.is_local else self.hostname


class Policy(_Model):
    allowed_tags: list[NonEmpty] = []  # fnmatch globs; empty allows any tag
    confirm: bool = False
    # Releases come only from these environments, and only images their history shows
    # released there and healthy (for at least `soak`, when set).
    accepts_from: list[EnvName] | None = None
    soak: Duration | None = None
    masked: bool = False  # takes only masked copies of other environments' data (--mask)

    def allows(self, tag: str) -> bool:
        return not self.allowed_tags or any(fnmatchcase(tag, p) for p in self.allowed_tags)


class Swarm(_Model):
    """A Swarm environment: its `hosts` are the nodes' SSH addresses (`name`: the node's
    hostname), `manager` is the one ferryman asks; each ferryman service is a Swarm service,
    named in `services`, else STACK_SERVICE with `stack`, else the ferryman service's name."""

    manager: Annotated[str, AfterValidator(_address)]
    stack: DockerName | None = None
    services: dict[ServiceName, DockerName] = {}
    timeout: Duration = 900.0  # the longest a service update may take, rollback included

    def service_name(self, service: str) -> str:
        if service in self.services:
            return self.services[service]
        return f"{self.stack}_{service}" if self.stack else service


class Environment(_Model):
    hosts: list[HostSpec] = Field(min_length=1)
    swarm: Swarm | None = None
    address: NonEmpty | None = None
    policy: Policy = Field(default_factory=Policy)
    # After a release, keep watching the released services this long (0: no watch).
    watch: Duration = 0.0
    # Variables every release to this environment sets on the containers it creates.
    env: EnvValues = {}
    # A compose release also makes the project's own files name the new image, so that a
    # plain `compose up -d` (a reboot script) keeps it; false: the operator's files are never
    # edited, and that `up -d` would start the previous image again.
    persist_compose: bool = True

    @property
    def own_address(self) -> str:
        """The address other environments use for this one (e.g. in guarded config files)."""
        return self.address or self.hosts[0].hostname

    def host(self, label: str) -> HostSpec | None:
        return next((h for h in self.hosts if h.label == label), None)


class Health(_Model):
    http: str | None = None
    docker: bool = False
    timeout: Duration = 5.0
    retries: int = Field(default=30, ge=1)
    interval: Duration = 2.0
    start_period: Duration = 0.0

    @field_validator("http")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _fail("a URL starting with http:// or https://")
        return value

    @field_validator("docker")
    @classmethod
    def _one_probe(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("http") is not None:
            raise _fail("either http or docker, not both")
        return value


HOOK_TIMEOUT = 600.0


def _hook_shorthand(value: Any) -> Any:
    """`before_switch: [python, manage.py, migrate]` is the argv alone, with the defaults."""
    return {"run": value} if isinstance(value, list) else value


class Hook(_Model):
    """A command run once per release in a one-off container from the NEW image, with the
    service's env, networks and volumes as TO runs it."""

    run: list[NonEmpty] = Field(min_length=1)
    timeout: Duration = HOOK_TIMEOUT
    changes_data: bool = False  # the release takes a backup of `data` on TO first

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise _fail("a duration above zero")
        return value


HookSpec = Annotated[Hook, BeforeValidator(_hook_shorthand)]


UPSTREAM_NAME = r"^[A-Za-z0-9_]+$"


class Proxy(_Model):
    """Blue-green through the operator's own nginx on each host of the service: the new
    container starts beside the old on the other of two loopback ports, nginx's upstream
    (a file ferryman owns, in a folder nginx includes at http level) is switched to it and
    reloaded, the old side drains and is kept for rollback."""

    port: int = Field(ge=1, le=65535)  # the container port the app serves
    ports: tuple[int, int]  # 127.0.0.1 host ports the two sides take in turn
    upstream: str | None = Field(default=None, pattern=UPSTREAM_NAME)  # ferryman_SERVICE
    dir: NonEmpty = "/etc/nginx/conf.d"  # Debian's nginx.conf includes it in `http`
    nginx: NonEmpty = "nginx"  # the nginx command on the host
    marker_port: int = Field(default=18409, ge=1, le=65535)  # 127.0.0.1: the generation
    drain: Duration = 30.0  # the longest wait for the old side's connections to end
    # release --canary: the router's loopback port, the header that sends a tester to the
    # new side, and how many points of 5xx over the old side abort (after min requests)
    canary_port: int = Field(default=18410, ge=1, le=65535)
    canary_header: str = Field(default="X-Canary", pattern=r"^[A-Za-z0-9-]+$")
    canary_margin: float = Field(default=2.0, ge=0, le=100)
    canary_min_requests: int = Field(default=20, ge=1)

    @field_validator("ports")
    @classmethod
    def _two_ports(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] == value[1] or not all(1 <= p <= 65535 for p in value):
            raise _fail("two different ports between 1 and 65535")
        return value

    @field_validator("drain")
    @classmethod
    def _drain(cls, value: float) -> float:
        if value < 0:
            raise _fail("a duration of zero or more")
        return value


class ComposeName(_Model):
    """A compose service named by its project and service, as its container labels say."""

    project: NonEmpty
    service: NonEmpty


class Service(_Model):
    container: DockerName | None = None
    # Found on each host by the labels com.docker.compose.project/service, so one name fits
    # compose v1 (project_service_1) and v2 (project-service-1); `container` is the fallback.
    compose: ComposeName | None = None
    hosts: list[NonEmpty] | None = None  # host labels; None: every host of the environment
    health: Health | None = None
    before_switch: HookSpec | None = None  # once per release, before any container changes
    after_switch: HookSpec | None = None  # once per release, after the health gate
    proxy: Proxy | None = None  # blue-green through nginx; run-mode containers
    # environment -> variables a release to it sets on this service (over environments.*.env)
    env: dict[EnvName, EnvValues] = {}

    _name: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, value: Any) -> Any:
        # `services: {web:}` reads naturally as "a service with all defaults".
        return {} if value is None else value

    @property
    def name(self) -> str:
        """The key under `services`, filled in by `Config`."""
        return self._name

    @property
    def upstream(self) -> str:
        """The nginx upstream of a proxied service."""
        given = self.proxy.upstream if self.proxy else None
        return given or "ferryman_" + re.sub(r"[^A-Za-z0-9_]", "_", self._name)

    @property
    def container_name(self) -> str:
        return self.container or self._name

    def runs_on(self, host: HostSpec) -> bool:
        return self.hosts is None or host.label in self.hosts


class Dump(_Model):
    """A database dumped inside its running container instead of stopping it."""

    container: DockerName
    engine: Literal["postgres", "mysql", "redis"]
    # postgres, mysql: required; redis: the whole instance is dumped (BGSAVE), none given.
    database: NonEmpty | None = None
    # postgres: the role pg_dump connects as (run as OS user `postgres` in the container);
    # mysql: the user mysqldump connects as, with the container's MYSQL_ROOT_PASSWORD if set.
    user: NonEmpty | None = None
    # SQL run on a copy of this database before a masked copy's services start (--mask)
    mask: list[NonEmpty] = []

    @model_validator(mode="after")
    def _database(self) -> Dump:
        if self.engine != "redis" and self.database is None:
            raise _fail(f"a database name for engine {self.engine}")
        if self.engine == "redis" and self.mask:
            raise _fail("no mask rules for redis (masking runs SQL)")
        return self

    @property
    def name(self) -> str:
        return f"{self.container}/{self.database or 'all'}"


class Data(_Model):
    dumps: list[Dump] = []
    volumes: list[DockerName] = []
    paths: list[AbsolutePath] = []
    stop: list[DockerName] = []  # stopped in this order for a consistent snapshot
    never_stop: list[DockerName] = []
    backup_dir: AbsolutePath = "/var/lib/ferryman/backups"
    keep: int = Field(default=7, ge=1)
    # Also keep every backup younger than this many days (None: the newest `keep` only).
    keep_days: float | None = Field(default=None, gt=0)
    offsite: Offsite | None = None  # copies kept on another environment's first host
    restic: Restic | None = None  # volumes and paths into a restic repository instead


JSON_KEY_EXPECTED = "a dotted key path like base_url or ragflow.base_url"


class Guard(_Model):
    file: AbsolutePath
    format: Literal["json"] = "json"
    key: Annotated[str, _pattern(r"[^.\s]+(?:\.[^.\s]+)*", JSON_KEY_EXPECTED)]
    must_name: Literal["self"] = "self"
    restart: list[NonEmpty] = []
    environments: list[NonEmpty] | None = None  # None: every environment

    @property
    def key_path(self) -> list[str]:
        return self.key.split(".")

    def applies_to(self, environment: str) -> bool:
        return self.environments is None or environment in self.environments


class Config(_Model):
    version: Literal[1] = 1
    project: NonEmpty
    log_dir: NonEmpty = ".ferryman/logs"
    ssh: SshDefaults = Field(default_factory=SshDefaults)
    environments: dict[EnvName, Environment] = Field(min_length=1)
    services: dict[ServiceName, Service] = {}
    data: Data | None = None
    guards: list[Guard] = []
    keep_releases: int = Field(default=3, ge=1)
    schedules: dict[EnvName, Schedule] = {}  # environment -> what runs unattended

    # Set by the loader; private so they are neither YAML keys nor part of dumps.
    _source: str = PrivateAttr(default="")
    _secrets: set[str] = PrivateAttr(default_factory=set)

    @model_validator(mode="after")
    def _name_services(self) -> Config:
        for name, service in self.services.items():
            service._name = name
        return self

    def values(self, env: str, service: str) -> dict[str, str]:
        """The variables a release to `env` sets on `service`: the environment's, then the
        service's own for that environment."""
        svc = self.services.get(service)
        return {**self.environments[env].env, **(svc.env.get(env, {}) if svc else {})}

    @property
    def source(self) -> str:
        """Path of the file this configuration was loaded from."""
        return self._source

    @property
    def secrets(self) -> set[str]:
        """Values that must never be shown: substituted variables and passwords."""
        return self._secrets

    def display(self) -> dict[str, Any]:
        """The resolved configuration as JSON-ready data, every secret masked."""
        secrets = self._secrets | {
            h.password.get_secret_value()
            for env in self.environments.values()
            for h in env.hosts
            if h.password is not None
        }
        return _displayable(self.model_dump(), secrets)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in `text` by `***`."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _displayable(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): _displayable(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_displayable(v, secrets) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


# --- checks across sections -----------------------------------------------------------

# A location in the raw data, like pydantic's `loc`; a trailing KEY means "the key itself".
KEY = "[key]"
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class CrossIssue:
    loc: Loc
    value: object
    expected: str


def cross_check(data: Mapping[str, Any]) -> list[CrossIssue]:
    """Checks that need several sections at once, run on the raw (pre-validation) data.

    Working on raw data lets these problems be reported together with schema errors;
    malformed parts are skipped here because schema validation reports them.
    """
    issues: list[CrossIssue] = []
    envs = _mapping(data.get("environments"))
    services = _mapping(data.get("services"))
    labels: set[str] = set()

    for env_name, env in envs.items():
        seen: set[str] = set()
        for i, host in enumerate(_list(_mapping(env).get("hosts"))):
            label, field_name = _host_label(host)
            if label is None:
                continue
            if label in seen:
                issues.append(
                    CrossIssue(
                        ("environments", env_name, "hosts", i, field_name),
                        label,
                        f"a host name unique in environment {env_name!r} "
                        "(set `name` to tell hosts apart)",
                    )
                )
            seen.add(label)
            labels.add(label)

    containers: dict[str, str] = {}
    composed: dict[str, str] = {}
    for svc_name, svc in services.items():
        svc = _mapping(svc)
        for i, label in enumerate(_list(svc.get("hosts"))):
            if isinstance(label, str) and label not in labels:
                issues.append(
                    CrossIssue(
                        ("services", svc_name, "hosts", i),
                        label,
                        f"the name of a host in some environment: {_choices(labels)}",
                    )
                )
        container = svc.get("container")
        compose = _mapping(svc.get("compose"))
        project, service = compose.get("project"), compose.get("service")
        if isinstance(project, str) and isinstance(service, str):
            pair = f"{project}/{service}"
            if pair in composed:
                issues.append(CrossIssue(
                    ("services", svc_name, "compose"), pair,
                    f"a compose service not already named by service {composed[pair]!r}"))
            else:
                composed[pair] = str(svc_name)
            if container is None:
                continue  # found by its labels: its key names no container
        name = container if isinstance(container, str) else svc_name
        if not isinstance(name, str):
            continue
        if name in containers:
            loc: Loc = ("services", svc_name, "container" if container is not None else KEY)
            issues.append(
                CrossIssue(
                    loc, name, f"a container name not already used by service {containers[name]!r}"
                )
            )
        else:
            containers[name] = str(svc_name)

    for env_name, env in envs.items():
        policy = _mapping(_mapping(env).get("policy"))
        for i, src in enumerate(_list(policy.get("accepts_from"))):
            if isinstance(src, str) and (src not in envs or src == env_name):
                issues.append(CrossIssue(
                    ("environments", env_name, "policy", "accepts_from", i), src,
                    "another environment name: "
                    f"{_choices(e for e in envs if e != env_name)}"))
        if policy.get("soak") is not None and not policy.get("accepts_from"):
            issues.append(CrossIssue(
                ("environments", env_name, "policy", "soak"), policy.get("soak"),
                "soak together with accepts_from (it is how long the source ran the image)"))

    issues.extend(_swarm_issues(envs, services))
    for svc_name, svc in services.items():
        for env_name in _mapping(_mapping(svc).get("env")):
            if isinstance(env_name, str) and env_name not in envs:
                issues.append(CrossIssue(("services", svc_name, "env", env_name, KEY), env_name,
                                         f"an environment name: {_choices(envs)}"))

    data_section = _mapping(data.get("data"))
    for svc_name, svc in services.items():
        for when in ("before_switch", "after_switch"):
            hook = _mapping(_mapping(svc).get(when))
            if hook.get("changes_data") is True and not data_section:
                issues.append(CrossIssue(
                    ("services", svc_name, when, "changes_data"), True,
                    "a data section (the backup taken before the hook backs up data.volumes,"
                    " data.paths and data.dumps)"))
    stop = {c for c in _list(data_section.get("stop")) if isinstance(c, str)}
    for i, container in enumerate(_list(data_section.get("never_stop"))):
        if isinstance(container, str) and container in stop:
            issues.append(
                CrossIssue(
                    ("data", "never_stop", i),
                    container,
                    "a container that is not also in data.stop",
                )
            )
    for i, dump in enumerate(_list(data_section.get("dumps"))):
        container = _mapping(dump).get("container")
        if isinstance(container, str) and container in stop:
            # A dump runs inside the running database; a stopped one cannot answer.
            issues.append(
                CrossIssue(
                    ("data", "dumps", i, "container"),
                    container,
                    "a database container that keeps running (not in data.stop)",
                )
            )

    for g, guard in enumerate(_list(data.get("guards"))):
        guard = _mapping(guard)
        for i, svc_name in enumerate(_list(guard.get("restart"))):
            if isinstance(svc_name, str) and svc_name not in services:
                issues.append(
                    CrossIssue(
                        ("guards", g, "restart", i),
                        svc_name,
                        f"a service defined under services: {_choices(services)}",
                    )
                )
        for i, env_name in enumerate(_list(guard.get("environments"))):
            if isinstance(env_name, str) and env_name not in envs:
                issues.append(
                    CrossIssue(
                        ("guards", g, "environments", i),
                        env_name,
                        f"an environment name: {_choices(envs)}",
                    )
                )
    issues.extend(CrossIssue(*issue) for issue in cross_issues(data))
    return issues


def _swarm_issues(envs: Mapping[Any, Any], services: Mapping[Any, Any]) -> list[CrossIssue]:
    """The manager must be one of the environment's hosts (ferryman reaches it as one), and
    `swarm.services` may name only ferryman services."""
    issues = []
    for env_name, env in envs.items():
        swarm = _mapping(_mapping(env).get("swarm"))
        manager = swarm.get("manager")
        addresses = [_mapping(h).get("address") for h in _list(_mapping(env).get("hosts"))]
        if isinstance(manager, str) and manager not in addresses:
            issues.append(CrossIssue(
                ("environments", env_name, "swarm", "manager"), manager,
                f"the address of one of the hosts of {env_name!r}: "
                f"{_choices(a for a in addresses if isinstance(a, str))}"))
        for name in _mapping(swarm.get("services")):
            if name not in services:
                issues.append(CrossIssue(("environments", env_name, "swarm", "services", name,
                                          KEY), name,
                                         f"a service defined under services: "
                                         f"{_choices(services)}"))
    return issues


def _host_label(host: object) -> tuple[str | None, str]:
    host = _mapping(host)
    name = host.get("name")
    if isinstance(name, str) and name:
        return name, "name"
    address = host.get("address")
    if not isinstance(address, str):
        return None, "address"
    try:
        parsed = parse_address(address)
    except ValueError:
        return None, "address"
    return ("local" if parsed.is_local else parsed.hostname), "address"


def _choices(names: Iterable[Any]) -> str:
    shown = sorted(str(n) for n in names)
    return ", ".join(shown) if shown else "(none defined)"


def _mapping(value: object) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
