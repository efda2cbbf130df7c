"""One family of errors, each class with one exit code, whenever and wherever it is raised.

Exit codes: 0 success; 1 a flow failed (a command or a gate failed: what was undone is said);
2 bad input or config (nothing was changed); 3 a host is not in the state the command needs
(unreachable, locked, a container or folder missing). The class decides the code, never the
moment: an unreachable host is 3 while planning and 3 in the middle of a step.

Every error carries where it happened (host, step), the evidence (raw output, log lines) and
the next thing to try (hint). The step runner fills in `step` as the error passes through it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FLOW_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PRECONDITION = 3


class FerrymanError(Exception):
    """Base of every error ferryman reports; subclasses only choose the exit code."""

    exit_code = EXIT_FLOW_FAILED

    def __init__(self, message: str, hint: str = "", *, host: str | None = None,
                 step: str | None = None, evidence: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.host = host
        self.step = step
        self.evidence = evidence

    def __str__(self) -> str:
        return self.message


class BadInput(FerrymanError):
    """The operator asked for something that cannot be: unknown env, service, bad value."""

    exit_code = EXIT_BAD_INPUT


class PreconditionFailed(FerrymanError):
    """A host is not in the state the command needs (container missing, lock held...)."""

    exit_code = EXIT_PRECONDITION


class LockHeld(PreconditionFailed):
    """Another run holds the environment's lock."""


class FlowFailed(FerrymanError):
    """Something a flow did failed: a command, a health gate, a check of what arrived."""

    exit_code = EXIT_FLOW_FAILED


class HealthFailed(FlowFailed):
    """A service did not pass its health check; `evidence` holds its last log lines."""


class Mismatch(FlowFailed):
    """What arrived is not what was sent (an image id, a checksum, a file count)."""


class Interrupted(FlowFailed):
    """The operator interrupted the run (Ctrl-C)."""


def exit_code_of(exc: BaseException | None) -> int:
    """The documented exit code of any exception: an unknown one is a failed flow."""
    if exc is None:
        return EXIT_OK
    return exc.exit_code if isinstance(exc, FerrymanError) else EXIT_FLOW_FAILED
