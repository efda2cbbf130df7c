"""Guards: values in the JSON and YAML files under the business containers' bind mounts that
name an environment's address (source note 000's base_url). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..config.schema import parse_address
from ..guards import LOCAL_NAMES, host_of
from . import classify as cl
from .facts import HostFacts
from .proposal import GuardEntry, Placed, Proposal, ServiceEntry, service_keys
from .request import Request, loopback


@dataclass
class Hit:
    """A value in a config file on a host that names an environment's address."""

    env: str  # where the file is
    host: str
    file: str
    key: list[str | int]
    value: str
    names: str  # the environment it names
    format: str  # json or yaml


def walk(doc: Any, path: list[str | int] | None = None) -> Iterator[tuple[list[str | int], str]]:
    """Every string leaf of a JSON or YAML document with its key path."""
    path = path or []
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from walk(v, [*path, str(k)])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from walk(v, [*path, i])
    elif isinstance(doc, str):
        yield path, doc


def parse_doc(name: str, text: str) -> tuple[str, Any] | None:
    if name.endswith(".json"):
        try:
            return "json", json.loads(text)
        except ValueError:
            return None
    try:
        return "yaml", YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError):
        return None


def address_map(req: Request, facts: list[HostFacts]) -> dict[str, str]:
    """address -> the environment it belongs to: --address, SSH hostnames, the hosts' own
    addresses (container bridges left out)."""
    owners: dict[str, set[str]] = {}
    for e in req.envs:
        found = [e.address] if e.address else []
        found += [parse_address(h.address).hostname for h in e.hosts]
        found += [a for h in facts if h.env == e.name for a in h.addresses]
        for a in found:
            if a and not loopback(a) and a.lower() not in LOCAL_NAMES:
                owners.setdefault(a.lower(), set()).add(e.name)
    # An address two environments share (one machine for both) tells them apart for nobody.
    return {a: next(iter(envs)) for a, envs in owners.items() if len(envs) == 1}


def find_hits(req: Request, facts: list[HostFacts], mounted: set[tuple[str, str]]
              ) -> list[Hit]:
    addresses = address_map(req, facts)
    hits = []
    for h in facts:
        for path, info in h.paths.items():
            if (h.host, path) not in mounted:
                continue
            for name, text in sorted(info.files.items()):
                parsed = parse_doc(name, text)
                if parsed is None:
                    continue
                fmt, doc = parsed
                for key, value in walk(doc):
                    try:
                        host = host_of(value.strip())
                    except ValueError:
                        continue
                    if host in addresses:
                        hits.append(Hit(h.env, h.host, name, key, value, addresses[host], fmt))
    return hits


def plan_guards(req: Request, running: list[Placed], services: list[ServiceEntry],
                facts: list[HostFacts], out: Proposal) -> tuple[list[GuardEntry], list[Hit]]:
    key_of = service_keys(running, services)
    business = [p for p in running if p.role.kind != cl.MONITOR]
    mounted = {(p.host, m.source) for p in business for m in p.c.mounts if m.type == "bind"}
    hits = find_hits(req, facts, mounted)
    envs = [e.name for e in req.envs]
    where_file: dict[str, set[str]] = {}
    for h in facts:
        for info in h.paths.values():
            for name in info.files:
                where_file.setdefault(name, set()).add(h.env)
    grouped: dict[tuple[str, tuple[str | int, ...]], list[Hit]] = {}
    for hit in hits:
        grouped.setdefault((hit.file, tuple(hit.key)), []).append(hit)
    guards = []
    for (file, key), found in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        dotted = ".".join(str(k) for k in key)
        said = "; ".join(_said(h) for h in found)
        if found[0].format != "json":
            out.undecided.append(f"{file} ({found[0].format}) key {dotted}: {said}. Guards "
                                 "read JSON only: check this value by hand after each release "
                                 "or data copy")
            continue
        if any(isinstance(k, int) for k in key) or any(
                "." in str(k) or not str(k).strip() or any(ch.isspace() for ch in str(k))
                for k in key):
            out.undecided.append(f"{file} key {dotted}: {said}. A guard's key is a path of "
                                 "mapping keys without dots or spaces: this one cannot be "
                                 "guarded; check it by hand")
            continue
        users = [p for p in business for m in p.c.mounts if m.type == "bind"
                 and (file == m.source or file.startswith(m.source.rstrip("/") + "/"))]
        restart = [s.key for s in services if s.key in {key_of.get(p.c.name) for p in users}]
        has = sorted(where_file.get(file, set()), key=envs.index)
        polluted = [h for h in found if h.names != h.env]
        why = f"{said}"
        if polluted:
            why += (". Cross-environment pollution (source note 000): the guard rewrites it "
                    "to name its own environment at the next release or data copy there "
                    "(`ferryman doctor` shows it now)")
        else:
            why += ". Each environment's value names itself: the guard keeps it so"
        if restart:
            why += "; restart: the services that mount it"
        writable = sorted({m.source for p in users for m in p.c.mounts if m.type == "bind"
                           and m.rw and file.startswith(m.source.rstrip("/") + "/")})
        if writable:
            why += (f". It lies in a folder the app writes to ({', '.join(writable)}): check "
                    "that it is configuration, not data")
        guards.append(GuardEntry(file, dotted, why, restart,
                                 has if has != envs else None))
    return guards, hits


def _said(h: Hit) -> str:
    whose = "itself" if h.names == h.env else f"{h.names}, not {h.env}"
    return f"on {h.host} it is {h.value!r}, naming {whose}"

