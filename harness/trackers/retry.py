"""Retrying a tracker call with exponential backoff, keeping secrets out of messages, and
keeping them from travelling anywhere but the configured tracker (redirects to another origin
are refused before anything is sent there)."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from harness.errors import UsageError
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


class RedirectRefused(UsageError):
    """The tracker answered a redirect to another origin (scheme, host or port). Not followed:
    every request carries the key or token, and `requests` keeps custom headers such as
    X-Redmine-API-Key across hosts. Exit 2: it is an answer (a wrong `url:` or a hostile
    proxy), not an outage a retry would cure. `attached` / `not_attached` say what reached the
    ticket before it (Jira sends one request per file)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        target: str,
        attached: Iterable[str] = (),
        not_attached: Iterable[str] = (),
    ) -> None:
        super().__init__(message, hint)
        self.target = target
        self.attached = list(attached)
        self.not_attached = list(not_attached)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if unparsable."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    except ValueError:
        return None
    return scheme, (parts.hostname or "").lower(), port


def shown(url: str) -> str:
    """A redirect target as it may be printed: no user:password@, no query, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unparsable URL"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


def refuse_redirects_elsewhere(
    session: requests.Session, base_url: str, what: str, key_from: str, secrets: Iterable[str]
) -> None:
    """Make `session` raise RedirectRefused on any answer redirecting outside `base_url`'s
    origin. A response hook runs on each answer before `requests` follows it, so the next hop
    is never contacted; redirects within the origin are followed as usual."""
    home = origin(base_url)
    hidden = list(secrets)

    def check(r: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if not r.is_redirect:
            return r
        target = urljoin(r.url, r.headers.get("location", ""))
        if home is not None and origin(target) == home:
            return r
        r.close()
        method = r.request.method if r.request is not None else "a request"
        asked = shown(str(r.url))
        there = redact(shown(target), hidden)
        raise RedirectRefused(
            f"{what} answered {method} {redact(asked, hidden)} with {r.status_code} to "
            f"{there}, another origin than {shown(base_url)}: not followed, so the key from "
            f"{key_from} was not sent there",
            hint=f"if the tracker really lives at {there}, set its url: in trackers.yaml; "
            "otherwise check what answers at the configured URL (a proxy or login page?)",
            target=there,
        )

    session.hooks["response"].append(check)
