"""Values per environment: the variables a release sets on TO (`environments.*.env`,
`services.*.env.ENV`), and the carried values that still name another environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..config import Config

LOOPBACK = {"localhost", "127.0.0.1", "::1", "local", ""}


def env_of_argv(argv: list[str], image: str) -> dict[str, str]:
    """The `-e KEY=VALUE` entries of a `docker create`/`docker run` argv, up to its image
    (what follows is the container's command)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv) - 1 and argv[i] != image:
        if argv[i] in ("-e", "--env"):
            key, _, val = argv[i + 1].partition("=")
            out[key] = val
            i += 1
        i += 1
    return out


def env_of_container(raw: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for entry in (raw.get("Config") or {}).get("Env") or []:
        key, _, val = entry.partition("=")
        out[key] = val
    return out


def lacking(raw: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The keys of `values` the container does not have with that value."""
    env = env_of_container(raw)
    return [k for k, v in values.items() if env.get(k) != v]


def addresses(cfg: Config, env: str) -> set[str]:
    e = cfg.environments[env]
    return ({e.own_address, *(h.hostname for h in e.hosts if not h.is_local)}) - LOOPBACK


def _names(text: str, addr: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(addr)}(?![\w-]|\.\w)", text) is not None


def foreign(cfg: Config, dst_env: str, env: Mapping[str, str],
            own: Mapping[str, str]) -> list[str]:
    """Each value of `env` (not one of TO's own `own` values) that names the address of
    another environment: '`KEY=VALUE` names test's address 10.0.0.58'."""
    mine = addresses(cfg, dst_env)
    found = []
    for other in cfg.environments:
        if other == dst_env:
            continue
        for addr in sorted(addresses(cfg, other) - mine):
            for key, value in env.items():
                if key not in own and _names(value, addr):
                    found.append(f"{key}={value} names {other}'s address {addr}")
    return found
