"""Errors that carry their exit code, so every verb fails the same way (DESIGN.md exit codes)."""

from __future__ import annotations

from harness import outcomes

USAGE = outcomes.USAGE
INFRA = outcomes.INFRA


class HarnessError(Exception):
    """A failure the user must see as one clear message, never a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(HarnessError):
    """Bad input: a bad scenario, an unknown run, a wrong option. Exit 2."""

    exit_code = USAGE


class InfraError(HarnessError):
    """The engine, a build or the machine failed; never a product failure. Exit 3."""

    exit_code = INFRA


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (or a run was cancelled); what was created is torn down.

    A BaseException, like KeyboardInterrupt, so no `except Exception` or `except HarnessError`
    on the way up can swallow it and carry on as if the step had merely failed.
    """

    exit_code = outcomes.INTERRUPTED
    hint: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
