"""What a check returns: findings (OK / WARN / FAIL), each with its evidence and its fix."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..transport import Result

EVIDENCE_LINES = 12
EVIDENCE_WIDTH = 240


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


SEVERITY = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default=Status.OK)


def trim(text: str, lines: int = EVIDENCE_LINES, width: int = EVIDENCE_WIDTH) -> str:
    """The last `lines` lines, each cut at `width`: the end of an output says the most."""
    parts = [ln if len(ln) <= width else ln[: width - 3] + "..." for ln in
             text.rstrip().splitlines()]
    if len(parts) > lines:
        parts = [f"... ({len(parts) - lines} earlier lines cut)", *parts[-lines:]]
    return "\n".join(parts)


def short_command(argv: list[str]) -> str:
    """The command line with a long constant script shown as `...`: the script's name (the
    `$0` after it, e.g. ferryman-probe) and its arguments are what tell runs apart."""
    if len(argv) > 2 and argv[0] == "sh" and argv[1] == "-c" and len(argv[2]) > 60:
        return shlex.join(argv[:2]) + " '...' " + shlex.join(argv[3:])
    return shlex.join(argv)


@dataclass
class Evidence:
    """A command run on the host and what it printed (trimmed)."""

    command: str
    output: str
    exit: int | None = None

    @classmethod
    def of(cls, result: Result, output: str | None = None) -> Evidence:
        """From a result; `output` replaces what it printed with the relevant excerpt."""
        if output is None:
            output = "\n".join(x for x in (result.stdout.strip(), result.stderr.strip()) if x)
        status = None if result.timed_out else result.exit_status
        text = trim(output) + ("\n(timed out)" if result.timed_out else "")
        return cls(short_command(result.argv), text, status)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "output": self.output, "exit": self.exit}


Apply = Callable[[], Awaitable[str]]


@dataclass
class Fix:
    """How to mend a finding. Only a `safe` fix with an `apply` is run by `--fix`; it backs
    up what it changes, and afterwards its own check and `recheck` run again as proof."""

    text: str
    safe: bool = False
    apply: Apply | None = field(default=None, repr=False, compare=False)
    commands: list[str] = field(default_factory=list)
    recheck: tuple[str, ...] = ()

    @property
    def automatic(self) -> bool:
        return self.safe and self.apply is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "safe": self.automatic}
        if self.commands:
            out["commands"] = self.commands
        return out


@dataclass
class Finding:
    check: str
    status: Status
    subject: str  # what it is about: a service, a port, a file, "ssh"...
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    fix: Fix | None = None
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable facts
    env: str = ""
    host: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "env": self.env, "host": self.host, "check": self.check, "status": str(self.status),
            "subject": self.subject, "summary": self.summary,
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.fix is not None:
            out["fix"] = self.fix.to_dict()
        if self.data:
            out["data"] = self.data
        return out


def ok(check: str, subject: str, summary: str, **kw: Any) -> Finding:
    return Finding(check, Status.OK, subject, summary, **kw)


def warn(check: str, subject: str, summary: str, **kw: Any) -> Finding:
    return Finding(check, Status.WARN, subject, summary, **kw)


def fail(check: str, subject: str, summary: str, **kw: Any) -> Finding:
    return Finding(check, Status.FAIL, subject, summary, **kw)
