"""Configuration problems, each pinned to a file, a line and a key path."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file.

    `value` is already rendered for display (repr-ish) and never holds a secret:
    the loader masks secrets as `***` before building the issue.
    """

    file: str
    line: int | None  # 1-based
    key: str  # e.g. environments.prod.hosts[0].address; empty for whole-file problems
    value: str | None
    expected: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        parts = [where]
        if self.key:
            parts.append(self.key)
        got = f"got {self.value}; " if self.value is not None else ""
        parts.append(f"{got}expected {self.expected}")
        return ": ".join(parts)


class ConfigError(BadInput):
    """Raised by `load_config`; carries every issue found, not only the first (exit 2)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
        # args hold the issues so the exception survives pickling (e.g. across processes)
        self.args = (self.issues,)
