"""A proposal as ferryman.yml text: plain text building, so that every guessed value gets its
comment (why, and what to check) right above it. Pure."""

from __future__ import annotations

import json
import re
import textwrap

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .propose import Item, Proposal

WIDTH = 96
_PLAIN = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_/~.@:+-]*")
_YAML = YAML(typ="safe", pure=True)


def scalar(value: str) -> str:
    """`value` written plain where YAML reads it back as this very string (not a number,
    a bool or null), else double-quoted."""
    if _PLAIN.fullmatch(value) and ": " not in value:
        try:
            if _YAML.load(value) == value:
                return value
        except YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def flow(values: list[str]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def comment(self, indent: int, text: str) -> None:
        if not text:
            return
        pad = " " * indent + "# "
        for para in text.split("\n"):
            hang = "  " if para.startswith("- ") else ""
            wrapped = textwrap.wrap(para, WIDTH - len(pad), break_long_words=False,
                                    break_on_hyphens=False, subsequent_indent=hang) or [""]
            self.lines += [(pad + w).rstrip() for w in wrapped]

    def line(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + text)

    def blank(self) -> None:
        self.lines.append("")

    def items(self, indent: int, key: str, items: list[Item]) -> None:
        if not items:
            return
        self.line(indent, f"{key}:")
        for it in items:
            self.comment(indent + 2, it.why)
            self.line(indent + 2, f"- {scalar(it.value)}")


def render(p: Proposal, header: list[str]) -> str:
    t = _Text()
    for h in header:
        t.comment(0, h)
    t.line(0, "version: 1")
    t.comment(0, p.project_why)
    t.line(0, f"project: {scalar(p.project)}")
    if p.known_hosts:
        t.line(0, "ssh:")
        t.line(2, f"known_hosts: {scalar(p.known_hosts)}")

    t.blank()
    t.line(0, "environments:")
    for e in p.envs:
        t.line(2, f"{e.name}:")
        if e.address:
            t.comment(4, e.address_why)
            t.line(4, f"address: {scalar(e.address)}")
        t.line(4, "hosts:")
        for h in e.hosts:
            first = "- "
            if h.name:
                t.line(6, f"- name: {scalar(h.name)}")
                first = "  "
            t.line(6, f"{first}address: {scalar(h.address)}")
            if p.identity_file:
                t.line(8, f"identity_file: {scalar(p.identity_file)}")
        if e.allowed_tags or e.confirm:
            t.comment(4, e.policy_why)
            t.line(4, "policy:")
            t.line(6, f"allowed_tags: {flow(e.allowed_tags)}")
            t.line(6, f"confirm: {'true' if e.confirm else 'false'}")

    t.blank()
    t.line(0, "services:" if p.services else "services: {}")
    group = None
    for s in p.services:
        if s.group != group and s.group:
            t.comment(2, f"--- {s.group}")
        group = s.group
        t.comment(2, s.why)
        t.line(2, f"{scalar(s.key)}:")
        if s.compose:
            t.line(4, "compose:")
            t.line(6, f"project: {scalar(s.compose[0])}")
            t.line(6, f"service: {scalar(s.compose[1])}")
        if s.container:
            t.comment(4, "its name on every host, where compose's labels are lost (a container "
                         "recreated by docker run)" if s.compose else "")
            t.line(4, f"container: {scalar(s.container)}")
        if s.hosts:
            t.line(4, f"hosts: {flow(s.hosts)}")
        if s.health_http or s.health_docker:
            t.comment(4, s.health_why)
            t.line(4, "health:")
            if s.health_http:
                t.line(6, f"http: {scalar(s.health_http)}")
            else:
                t.line(6, "docker: true")
        else:
            # A key with nothing under it is a service with every default (running = healthy).
            t.comment(4, s.health_why)

    if p.volumes or p.paths or p.stop or p.never_stop:
        t.blank()
        t.line(0, "data:")
        t.items(2, "volumes", p.volumes)
        t.items(2, "paths", p.paths)
        if p.stop:
            t.comment(2, "stopped in this order (writers first, stores last) for a consistent "
                         "snapshot, and started again in reverse")
        t.items(2, "stop", p.stop)
        t.items(2, "never_stop", p.never_stop)

    if p.guards:
        t.blank()
        t.line(0, "guards:")
        for g in p.guards:
            t.comment(2, g.why)
            t.line(2, f"- file: {scalar(g.file)}")
            t.line(4, "format: json")
            t.line(4, f"key: {scalar(g.key)}")
            t.line(4, "must_name: self")
            if g.restart:
                t.line(4, f"restart: {flow(g.restart)}")
            if g.environments:
                t.line(4, f"environments: {flow(g.environments)}")

    if p.undecided:
        t.blank()
        t.comment(0, "Not decided: check these by hand")
        for u in p.undecided:
            t.comment(0, f"- {u}")
    if p.left_out:
        t.blank()
        t.comment(0, "Seen and left out on purpose")
        for it in p.left_out:
            t.comment(0, f"- {it.value}: {it.why}")
    return "\n".join(t.lines) + "\n"
