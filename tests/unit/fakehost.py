"""A Host that answers from outputs captured on real engines, for flow tests without a server.

Each host is told, argv pattern by argv pattern, what to answer: replayed from a capture file
(tests/unit/data/flows/, made by tests/unit/capture.py against real test hosts) or given by the
test. It records every argv it ran, and a command nobody scripted fails loudly: it raises, and
the `hosts` fixture fails the test at teardown even when a flow swallowed the error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferryman.config import Config
from ferryman.config.schema import HostSpec
from ferryman.hosts import HostPool
from ferryman.journal import journal_path
from ferryman.state import ABSENT
from ferryman.transport import CommandFailed, Result

CAPTURED = Path(__file__).parent / "data" / "flows"
_NO_FILE = "No such file or directory"


class _Any:
    """Matches any one argv element (a script, a generated id, a lock owner); equal to any
    value, so expected argv lists can hold it too."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
REST: Any = ...  # as the last element: any number of further elements


class UnexpectedCommand(AssertionError):
    pass


@dataclass
class Reply:
    exit_status: int = 0
    stdout: str = ""
    stderr: str = ""


Answer = Reply | BaseException | Callable[[list[str]], "Reply | BaseException"]


@dataclass
class Rule:
    pattern: list[Any]
    answers: list[Answer]
    used: int = 0

    def matches(self, argv: list[str]) -> bool:
        pat = self.pattern
        if pat and pat[-1] is REST:
            pat = pat[:-1]
            if len(argv) < len(pat):
                return False
            argv = argv[: len(pat)]
        return len(pat) == len(argv) and all(p is ANY or p == a for p, a in zip(pat, argv,
                                                                               strict=True))

    def next(self) -> Answer:
        # Answers are given in order; the last one repeats (a state that no longer changes).
        answer = self.answers[min(self.used, len(self.answers) - 1)]
        self.used += 1
        return answer


@dataclass
class Capture:
    """One capture file: what each real host answered, in the order it was asked."""

    source: dict[str, Any]
    calls: list[dict[str, Any]]

    @classmethod
    def load(cls, name: str) -> Capture:
        data = json.loads((CAPTURED / f"{name}.json").read_text())
        return cls(data["source"], data["calls"])

    def replies(self, host: str, argv: Sequence[str]) -> list[Reply]:
        found = [Reply(c["exit_status"], c["stdout"], c["stderr"]) for c in self.calls
                 if c["host"] == host and c["argv"] == list(argv)]
        if not found:
            raise KeyError(f"no captured answer on {host} for {list(argv)}")
        return found

    def stdout(self, host: str, argv: Sequence[str]) -> str:
        return self.replies(host, argv)[0].stdout

    def read_replies(self, host: str, argv: Sequence[str], old: Sequence[str]) -> list[Reply]:
        """The answers to a file read `argv` (ferryman.state's read_file, read_records); when
        the capture predates those scripts, its answers to the older spelling `old` (`cat
        FILE`, `tail -n N FILE`) as the scripts give them: `[ -e FILE ] || exit 66` answers a
        missing file with ABSENT and nothing said, and prints a file that exists as before."""
        if any(c["host"] == host and c["argv"] == list(argv) for c in self.calls):
            return self.replies(host, argv)
        return [Reply(ABSENT) if r.exit_status != 0 and _NO_FILE in r.stderr else r
                for r in self.replies(host, old)]


@dataclass
class ScriptedHost:
    label: str
    rules: list[Rule] = field(default_factory=list)
    ran: list[list[str]] = field(default_factory=list)
    inputs: dict[int, bytes] = field(default_factory=dict)  # index in `ran` -> stdin given
    unexpected: list[list[str]] = field(default_factory=list)

    def on(self, pattern: Sequence[Any], *answers: Answer) -> ScriptedHost:
        """Answers argv matching pattern; later rules win over earlier ones."""
        self.rules.insert(0, Rule(list(pattern), list(answers) or [Reply()]))
        return self

    def replay(self, capture: Capture, host: str | None = None) -> ScriptedHost:
        """Every command the real host `host` (default: this label) answered, answered alike."""
        host = host or self.label
        seen: list[list[str]] = []
        for call in capture.calls:
            if call["host"] == host and call["argv"] not in seen:
                seen.append(call["argv"])
                self.on(call["argv"], *capture.replies(host, call["argv"]))
        return self

    def keeps_state(self, journal: Reply | None = None) -> ScriptedHost:
        """The lock and journal commands of a mutating flow on its environment's first host:
        the lock is free, no journal is left (unless `journal` answers its read)."""
        path = journal_path("shop")
        for name in ("ferryman-lock", "ferryman-unlock", "ferryman-heartbeat",
                     "ferryman-journal"):
            self.on(["sh", "-c", ANY, name, REST], Reply(0))
        self.on(["sh", "-c", ANY, "ferryman-read", path], journal or Reply(ABSENT))
        self.on(["rm", "-f", "--", path], Reply(0))
        return self

    def changes(self) -> list[list[str]]:
        """What it ran, less the lock and journal bookkeeping."""
        book = ScriptedHost("book").keeps_state()
        return [argv for argv in self.ran if not any(r.matches(argv) for r in book.rules)]

    def ran_matching(self, *pattern: Any) -> list[list[str]]:
        rule = Rule(list(pattern), [])
        return [argv for argv in self.ran if rule.matches(argv)]

    async def run(self, argv: Sequence[str], *, timeout: float | None = None,
                  input: bytes | None = None, check: bool = False) -> Result:
        argv = list(argv)
        self.ran.append(argv)
        if input is not None:
            self.inputs[len(self.ran) - 1] = input
        rule = next((r for r in self.rules if r.matches(argv)), None)
        if rule is None:
            self.unexpected.append(argv)
            raise UnexpectedCommand(f"{self.label}: nothing scripted for {argv}")
        answer = rule.next()
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(argv)
        if isinstance(answer, BaseException):
            raise answer
        result = Result(self.label, argv, answer.exit_status, answer.stdout, answer.stderr)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def open(self, argv: Sequence[str], *,  # type: ignore[no-untyped-def]
                   idle_timeout: float | None = None):
        self.ran.append(list(argv))
        self.unexpected.append(list(argv))
        raise UnexpectedCommand(f"{self.label}: no stream is scripted ({list(argv)})")

    async def close(self) -> None:
        return None


class ScriptedHosts:
    """The hosts of one test, by label, and a pool that hands them out."""

    def __init__(self) -> None:
        self.by_label: dict[str, ScriptedHost] = {}

    def __getitem__(self, label: str) -> ScriptedHost:
        if label not in self.by_label:
            self.by_label[label] = ScriptedHost(label)
        return self.by_label[label]

    def pool(self, cfg: Config) -> HostPool:
        def make(env: str, spec: HostSpec) -> ScriptedHost:
            return self[spec.label]
        return HostPool(cfg, make_host=make)

    def unexpected(self) -> dict[str, list[list[str]]]:
        return {label: h.unexpected for label, h in self.by_label.items() if h.unexpected}
