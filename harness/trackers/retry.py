"""Retrying a tracker call with exponential backoff, and keeping secrets out of messages."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import requests

from harness.trackers.config import RetryPolicy

T = TypeVar("T")
log = logging.getLogger("harness.trackers")


class Transient(Exception):
    """A failure worth retrying: no connection, a timeout, 429 or 5xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Exhausted(Exception):
    """Every attempt failed with a transient error; `reason` is the last one."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; on Transient wait policy.delays[i] and try again; Exhausted at the end."""
    attempts = len(policy.delays) + 1
    for attempt in range(attempts):
        try:
            return action()
        except Transient as exc:
            if attempt == attempts - 1:
                raise Exhausted(exc.reason, attempts) from None
            delay = policy.delays[attempt]
            log.warning(
                "%s: %s; retrying in %gs (%d/%d)",
                what,
                exc.reason,
                delay,
                attempt + 1,
                attempts - 1,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def is_transient_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def describe(exc: BaseException) -> str:
    """A short, secret-free phrase for a requests failure ("connection refused", "timed out")."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or (
            isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(seen, ConnectionResetError):
            return "connection reset"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed by the server"
    if "Name or service not known" in text or "Failed to resolve" in text:
        return "host name not found"
    return f"connection failed ({type(exc).__name__})"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***; server texts can echo what they were sent."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
