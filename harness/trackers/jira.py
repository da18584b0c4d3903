"""Jira (Cloud or Data Center) through the `jira` library, REST API v2.

Endpoints used: GET /rest/api/2/serverInfo (the client's handshake), GET
/rest/api/2/issue/<key>?fields=attachment,comment, POST /rest/api/2/issue/<key>/attachments
(multipart, X-Atlassian-Token: no-check) once per new file, POST /rest/api/2/issue/<key>/comment.
A file counts as already attached when the issue has an attachment of the same name and size
(Jira publishes no digest). The library's own retries are off: ours apply (connection errors,
timeouts, 429, 5xx), like Redmine's. JIRAError's text carries the request headers, the
Authorization header among them: it is never shown; only its status and the server's words are.
The client's session refuses a redirect to another origin before following it
(RedirectRefused, exit 2), so the token goes nowhere but the configured URL; the handshake is
made only once that guard is in place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError

from harness.errors import UsageError
from harness.trackers import AttachResult, TrackerAuthError, TrackerNotFound, TrackerUnavailable
from harness.trackers.config import RetryPolicy, TrackerEntry
from harness.trackers.local import LocalFile, files_of, record_attach
from harness.trackers.retry import (
    Exhausted,
    RedirectRefused,
    Transient,
    describe,
    is_transient_status,
    redact,
    refuse_redirects_elsewhere,
    with_retries,
)

T = TypeVar("T")
_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)-[1-9][0-9]*$")


class JiraTracker:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        token: str,
        token_env: str,
        email: str | None = None,
        email_env: str | None = None,
        project: str | None = None,
        index_dir: Path | None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.project = project
        self.token_env = token_env
        self.email_env = email_env
        self.retry = retry or RetryPolicy()
        self.index_dir = index_dir
        self._token = token
        self._email = email
        self._sleep = sleep or time.sleep

    @classmethod
    def from_config(cls, entry: TrackerEntry, *, index_dir: Path | None) -> JiraTracker:
        email = entry.secret("email_env") if entry.has_secret("email_env") else None
        return cls(
            name=entry.name,
            url=entry.url,
            token=entry.secret("token_env"),
            token_env=entry.secret_env["token_env"],
            email=email,
            email_env=entry.secret_env.get("email_env"),
            project=entry.project,
            index_dir=index_dir,
            retry=entry.retry,
        )

    def __repr__(self) -> str:  # never the token
        return f"JiraTracker(name={self.name!r}, url={self.url!r}, token from ${self.token_env})"

    @property
    def _creds(self) -> str:
        return (
            f"${self.email_env} and ${self.token_env}" if self.email_env else f"${self.token_env}"
        )

    def _call(self, action: Callable[[], T], what: str) -> T:
        def attempt() -> T:
            try:
                return action()
            except JIRAError as exc:
                status = exc.status_code
                if status is not None and is_transient_status(status):
                    raise Transient(f"{status}") from None
                raise self._error(exc, what) from None
            except requests.RequestException as exc:
                raise Transient(describe(exc)) from None

        return with_retries(attempt, self.retry, f"Jira at {self.url} ({what})", self._sleep)

    def _error(self, exc: JIRAError, what: str) -> UsageError:
        status = exc.status_code
        if status in (401, 403):
            return TrackerAuthError(
                f"Jira at {self.url} refused the credentials from {self._creds} ({status}) "
                f"while trying to {what}",
                hint="check the API token (and account email), and that the account may see "
                "and comment on the issue",
            )
        if status == 404:
            return TrackerNotFound(f"Jira at {self.url}: {what}: not found (404)")
        words = redact(str(exc.text or "")[:300], self._secrets())
        return UsageError(
            f"Jira at {self.url} refused to {what} ({status or 'no status'}): {words}"
        )

    def _secrets(self) -> list[str]:
        return [self._token, *([self._email] if self._email else [])]

    def _client(self) -> JIRA:
        def connect() -> JIRA:
            auth: dict[str, Any] = (
                {"basic_auth": (self._email, self._token)}
                if self._email
                else {"token_auth": self._token}
            )
            client = JIRA(
                server=self.url,
                options={"check_update": False},
                max_retries=0,  # ours apply
                timeout=self.retry.timeout,
                logging=False,
                get_server_info=False,  # made below, once redirects elsewhere are refused
                **auth,
            )
            refuse_redirects_elsewhere(
                client._session, self.url, f"Jira at {self.url}", self._creds, self._secrets()
            )
            info = client.server_info()  # what get_server_info=True does
            client._version = tuple(info["versionNumbers"])
            client.deploymentType = info.get("deploymentType")
            return client

        return self._call(connect, "connect")

    def attach(self, ticket: str, files: list[Path], comment: str) -> AttachResult:
        key = self._key(ticket)
        todo = files_of(files)
        result = AttachResult(tracker=self.name, ticket=key, url=f"{self.url}/browse/{key}")
        new: list[LocalFile] = []
        done: list[tuple[LocalFile, str]] = []
        try:
            client = self._client()
            try:
                issue = self._call(
                    lambda: client.issue(key, fields="attachment,comment"), f"read issue {key}"
                )
            except TrackerNotFound:
                raise TrackerNotFound(
                    f"Jira at {self.url} has no issue {key} "
                    f"(or the account from {self._creds} may not see it)"
                ) from None
            fields = (issue.raw or {}).get("fields") or {}
            existing = fields.get("attachment") or []
            for f in todo:
                if any(a.get("filename") == f.name and a.get("size") == f.size for a in existing):
                    result.already.append(f.name)
                else:
                    new.append(f)
            text = comment.strip()
            said = any(
                str(c.get("body") or "").strip() == text
                for c in (fields.get("comment") or {}).get("comments") or []
            )
            for f in new:
                done.append((f, self._add_file(client, key, f)))
                result.attached.append(f.name)
            if text and (new or not said):
                c = self._call(lambda: client.add_comment(key, text), f"comment on {key}")
                result.comment = f"{self.url}/browse/{key}?focusedCommentId={c.id}"
        except RedirectRefused as exc:
            self._record(result, done)
            exc.attached = [f.name for f, _ in done]
            exc.not_attached = [f.name for f in todo if f.name not in exc.attached + result.already]
            raise
        except Exhausted as exc:
            self._record(result, done)
            attached = [f.name for f, _ in done]
            not_attached = [f.name for f in todo if f.name not in attached + result.already]
            raise TrackerUnavailable(
                f"Jira at {self.url} did not answer: {redact(exc.reason, self._secrets())} "
                f"(after {exc.attempts} attempts); attached: {', '.join(attached) or 'nothing'};"
                f" not attached: {', '.join(not_attached) or 'nothing'}",
                hint="rerun when it is back: files already on the issue are not sent again",
                attached=attached,
                not_attached=not_attached,
            ) from None
        self._record(result, done)
        return result

    def _add_file(self, client: JIRA, key: str, f: LocalFile) -> str:
        with f.path.open("rb") as fh:
            att = self._call(
                lambda: client.add_attachment(issue=key, attachment=fh, filename=f.name),
                f"attach {f.name} to {key}",
            )
        raw = att.raw or {}
        return str(raw.get("content") or raw.get("self") or f"{self.url}/browse/{key}")

    def _key(self, ticket: str) -> str:
        key = ticket.strip().upper()
        m = _KEY.match(key)
        if not m:
            raise TrackerNotFound(f"{ticket!r} is not a Jira issue key (expected e.g. SUP-123)")
        if self.project and m.group(1) != self.project.upper():
            raise TrackerNotFound(
                f"Jira issue {key} is not in project {self.project} as configured for "
                f"tracker {self.name}"
            )
        return key

    def _record(self, result: AttachResult, done: list[tuple[LocalFile, str]]) -> None:
        record_attach(self.index_dir, self.name, result, list(done))
