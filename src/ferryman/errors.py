"""Errors that end a command with a documented exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FLOW_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PRECONDITION = 3


class FerrymanError(Exception):
    exit_code = EXIT_FLOW_FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class BadInput(FerrymanError):
    """The operator asked for something that cannot be: unknown env, service, bad value."""

    exit_code = EXIT_BAD_INPUT


class PreconditionFailed(FerrymanError):
    """A host is not in the state the command needs (unreachable, container missing...)."""

    exit_code = EXIT_PRECONDITION


class HealthFailed(FerrymanError):
    """A service did not pass its health check; `evidence` holds its last log lines."""

    def __init__(self, message: str, evidence: str = "", hint: str = "") -> None:
        super().__init__(message, hint)
        self.evidence = evidence
