"""The one-off container of a release hook: `docker run --rm` from the NEW image, with the
service's environment, network and mounts as the running container has them.

Built from `docker inspect` of the container TO runs, the same way for a `docker run` service
and a compose one: it needs no compose file, and `docker run` spells the same on Docker 20.10
and 26.1, where `docker-compose run` (v1) and `docker compose run` (v2) differ in how they
name, label and attach one-off containers. Left out on purpose: published ports (the service
holds them), restart policy, network aliases and static addresses (the hook must not take the
service's traffic or address), the hostname and name resolution are kept (a migration
reaches its database as the service does); compose labels (compose would count the hook as its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .runspec import (
    Rewrite,
    _Carry,
    _env,
    _first_network,
    _identity,
    _mount_dests,
    _mounts,
    _tmpfs,
    _user_and_dirs,
)

Json = dict[str, Any]
WRAP = 'exec "$@" 2>&1'  # the hook's stderr joins its stdout: one stream into the step log


def hook_name(container: str, rid: str, when: str) -> str:
    return f"{container}.ferryman-{rid}-{when}"


def hook_run(container: Json, old_image: Json | None, new_image: str, argv: list[str], *,
             name: str, rewrite: Rewrite | None = None,
             env: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(the `docker run --rm` argv, notes of values carried as they were). `env`: the
    environment's own values, set as the release sets them on the service."""
    config: Json = container.get("Config") or {}
    host: Json = container.get("HostConfig") or {}
    image: Json | None = None if old_image is None else old_image.get("Config") or {}
    carry = _Carry(rewrite)
    mounts, _ = _mounts(container)
    mode = host.get("NetworkMode") or "default"
    networks: Json = (container.get("NetworkSettings") or {}).get("Networks") or {}
    net: list[str] = []
    if mode in ("host", "none") or mode.startswith("container:"):
        net = ["--network", mode]
    elif networks:
        first = _first_network(mode, networks)
        if first != "bridge":
            net = ["--network", first]
    own_net = not mode.startswith("container:")
    args = [
        *net, *mounts, *_tmpfs(host),
        *(_identity(container, carry) if own_net else []),
        *_env(config, image, carry, env),
        *_user_and_dirs(config, image, _mount_dests(container), host, expose=False),
    ]
    # The image's entrypoint would wrap the hook (an app server's start script): the hook's
    # argv is the whole command.
    head, *rest = argv
    run = ["docker", "run", "--rm", "--name", name, *_no_tty(args), "--entrypoint", head,
           new_image, *rest]
    return run, carry.notes


def _no_tty(args: list[str]) -> list[str]:
    """A hook reads nothing and its output is a log: no terminal, no stdin."""
    return [a for a in args if a not in ("-t", "-i")]


def wrapped(argv: list[str]) -> list[str]:
    """The hook's run with its stderr merged into stdout, every value a positional argument."""
    return ["sh", "-c", WRAP, "-", *argv]


def remove_hook(name: str) -> list[str]:
    return ["docker", "rm", "-f", name]
