"""What a TCP connect attempt said: open, no route, refused, timeout."""

from __future__ import annotations

from dataclasses import dataclass

from ..transport import Result

OPEN = "open"
NO_ROUTE = "no route to host"
REFUSED = "connection refused"
TIMEOUT = "timeout"
UNREACHABLE = "network unreachable"
UNKNOWN = "error"

TIMEOUT_EXIT = 124  # coreutils timeout


@dataclass
class Outcome:
    result: str  # one of the constants above
    message: str  # the line the tool printed

    @property
    def open(self) -> bool:
        return self.result == OPEN


def classify(exit_status: int, output: str, timed_out: bool = False) -> Outcome:
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    low = output.lower()
    if exit_status == 0 and not timed_out:
        return Outcome(OPEN, last or "connected")
    if "no route to host" in low:
        return Outcome(NO_ROUTE, last)
    if "refused" in low:
        return Outcome(REFUSED, last)
    if "network is unreachable" in low:
        return Outcome(UNREACHABLE, last)
    if timed_out or exit_status == TIMEOUT_EXIT or "timed out" in low:
        return Outcome(TIMEOUT, last or "no answer before the timeout")
    return Outcome(UNKNOWN, last or f"exit {exit_status}")


def outcome(result: Result) -> Outcome:
    return classify(result.exit_status, f"{result.stdout}\n{result.stderr}", result.timed_out)
