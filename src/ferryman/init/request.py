"""What the operator asked `ferryman init` for: the options, checked, and the connection
settings they make (the same Config model every other command connects with)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..config import Config
from ..config.schema import ENV_NAME_RE, parse_address
from ..errors import BadInput


@dataclass
class HostInput:
    address: str  # user@host[:port] as given
    name: str | None = None  # set where the hostname alone would not tell hosts apart


@dataclass
class EnvInput:
    name: str
    hosts: list[HostInput] = field(default_factory=list)
    address: str | None = None  # --address: how others see this environment


@dataclass
class Request:
    envs: list[EnvInput]
    identity_file: str | None = None
    known_hosts: str | None = None
    project: str | None = None
    connect_timeout: float = 10.0

    @property
    def source(self) -> str:
        """Where releases come from: the first environment given (usually test)."""
        return self.envs[0].name


def loopback(hostname: str) -> bool:
    if hostname in ("localhost", "local"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _pair(option: str, text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not value:
        raise BadInput(f"{option} {text!r}: expected NAME={what}, e.g. {option} "
                       f"test={'root@203.0.113.7' if option == '--env' else '203.0.113.7'}")
    if not re.fullmatch(ENV_NAME_RE, name):
        raise BadInput(f"{option} {text!r}: {name!r} is not an environment name "
                       "(a lowercase letter, then a-z, 0-9, _ or -)")
    return name, value


def build(envs: list[str], addresses: list[str] | None = None, *,
          identity_file: str | None = None, known_hosts: str | None = None,
          project: str | None = None, connect_timeout: float = 10.0) -> Request:
    """The request from the command line; BadInput names the option at fault.

    `--env NAME=[user@]host[:port]`, repeated for each environment (twice with one NAME for an
    environment of two hosts); `--address NAME=ADDR` where others reach an environment by
    another address than its SSH one (a tunnel, NAT, a forwarded port).
    """
    if not envs:
        raise BadInput("--env is required: --env test=root@TEST_HOST --env prod=root@PROD_HOST")
    by_name: dict[str, EnvInput] = {}
    for text in envs:
        name, value = _pair("--env", text, "[user@]host[:port]")
        try:
            parse_address(value, allow_local=False)
        except ValueError as exc:
            raise BadInput(f"--env {text!r}: expected {name}=user@host[:port] ({exc})") from None
        env = by_name.setdefault(name, EnvInput(name))
        if any(h.address == value for h in env.hosts):
            raise BadInput(f"--env {text!r}: {value} is given twice for {name}")
        env.hosts.append(HostInput(value))
    for text in addresses or []:
        name, value = _pair("--address", text, "ADDRESS")
        if name not in by_name:
            raise BadInput(f"--address {text!r}: no --env names environment {name!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]+", value):
            raise BadInput(f"--address {text!r}: expected a hostname or an IP address")
        by_name[name].address = value
    for env in by_name.values():
        names = [parse_address(h.address).hostname for h in env.hosts]
        for i, (h, hostname) in enumerate(zip(env.hosts, names, strict=True)):
            # Hosts are named by hostname in messages; 127.0.0.1 (a tunnel, a forwarded port)
            # or a hostname given twice would say nothing, so those get ENV-N.
            if loopback(hostname) or names.count(hostname) > 1:
                h.name = f"{env.name}-{i + 1}"
    req = Request(list(by_name.values()), identity_file, known_hosts, project, connect_timeout)
    if project is not None and not project.strip():
        raise BadInput("--project: expected a name, got an empty string")
    connect_config(req)  # every value it takes is checked by the schema too
    return req


def connect_config(req: Request) -> Config:
    """The settings init connects with: ~/.ssh/config, the agent and known_hosts as in every
    other command, plus what the options say."""
    ssh: dict[str, object] = {"connect_timeout": req.connect_timeout}
    if req.known_hosts:
        ssh["known_hosts"] = req.known_hosts
    data = {
        "project": req.project or "init",
        "ssh": ssh,
        "environments": {
            e.name: {"hosts": [_host(h, req) for h in e.hosts],
                     **({"address": e.address} if e.address else {})}
            for e in req.envs
        },
    }
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInput(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def _host(h: HostInput, req: Request) -> dict[str, object]:
    out: dict[str, object] = {"address": h.address}
    if h.name:
        out["name"] = h.name
    if req.identity_file:
        out["identity_file"] = req.identity_file
    return out


def label(h: HostInput) -> str:
    return h.name or parse_address(h.address).hostname
