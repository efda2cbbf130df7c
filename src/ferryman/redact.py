"""What may be shown of raw output: known noise lines dropped, secrets masked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"

# Lines that say nothing about the failure and bury the ones that do.
NOISE = [
    re.compile(r"close - IO is still pending on closed socket"),  # Windows OpenSSH client
    re.compile(r"^Warning: Permanently added .* to the list of known hosts\.?$"),
    re.compile(r"^Connection to \S+ closed\.?$"),
    re.compile(r"^WARNING! Your password will be stored unencrypted"),
]

# key=value / key: value pairs whose value is a secret whatever it is.
SECRET_PAIRS = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY)[A-Z0-9_]*)"
    r"(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',}]+)"
)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return SECRET_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", value)

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def filter_noise(output: str) -> str:
    """Drops known noise lines; keeps everything else as it was printed."""
    kept = [ln for ln in output.splitlines() if not any(p.search(ln.strip()) for p in NOISE)]
    return "\n".join(kept)


def tail(output: str, lines: int = 60) -> str:
    parts = output.splitlines()
    if len(parts) <= lines:
        return output
    return "\n".join([f"... ({len(parts) - lines} earlier lines cut)", *parts[-lines:]])


def raw_output(output: str, redactor: Redactor, lines: int = 60) -> str:
    return redactor.text(tail(filter_noise(output), lines))
