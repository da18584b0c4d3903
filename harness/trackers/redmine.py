"""Redmine over its REST API (plain `requests`; Redmine 5 checked, 4.2+ should do).

attach: GET /issues/<id>.json?include=attachments,journals; skip files whose name and digest
(sha256 in Redmine >= 4.2, md5 before; size when there is none) are already there; POST each new
file to /uploads.json (application/octet-stream); one PUT /issues/<id>.json with the uploads,
the note and, if configured, status and custom fields. Nothing new and the same note already
on the issue -> nothing is sent. The key travels in X-Redmine-API-Key, never in a URL, and
only to the configured origin: `requests` would carry that header along a redirect to any host,
so a redirect elsewhere is refused before it is followed (RedirectRefused, exit 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

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


class RedmineTracker:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        api_key: str,
        key_env: str,
        index_dir: Path | None,
        project: str | None = None,
        status: str | None = None,
        custom_fields: dict[str, str] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.key_env = key_env
        self.project = project
        self.status = status
        self.custom_fields = dict(custom_fields or {})
        self.retry = retry or RetryPolicy()
        self.index_dir = index_dir
        self._sleep = sleep
        self._key = api_key
        self._session = requests.Session()
        self._session.headers.update({"X-Redmine-API-Key": api_key, "Accept": "application/json"})
        refuse_redirects_elsewhere(
            self._session, self.url, f"Redmine at {self.url}", f"${key_env}", [api_key]
        )

    @classmethod
    def from_config(cls, entry: TrackerEntry, *, index_dir: Path | None) -> RedmineTracker:
        return cls(
            name=entry.name,
            url=entry.url,
            api_key=entry.secret("api_key_env"),
            key_env=entry.secret_env["api_key_env"],
            project=entry.project,
            status=entry.status,
            custom_fields=entry.custom_fields,
            retry=entry.retry,
            index_dir=index_dir,
        )

    def __repr__(self) -> str:  # never the key
        return f"RedmineTracker(name={self.name!r}, url={self.url!r}, key from ${self.key_env})"

    # ---- HTTP --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        upload: Path | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """One call, retried on connection errors, timeouts, 429 and 5xx; 401/403 and 404 raise
        TrackerAuthError and TrackerNotFound; other 4xx a UsageError with Redmine's words."""

        def attempt() -> requests.Response:
            try:
                if upload is not None:
                    with upload.open("rb") as fh:
                        r = self._session.request(
                            method,
                            self.url + path,
                            data=fh,
                            params=params,
                            headers={"Content-Type": "application/octet-stream"},
                            timeout=self.retry.timeout,
                        )
                else:
                    r = self._session.request(
                        method,
                        self.url + path,
                        json=json_body,
                        params=params,
                        timeout=self.retry.timeout,
                    )
            except requests.RequestException as exc:
                raise Transient(describe(exc)) from None
            if is_transient_status(r.status_code):
                raise Transient(f"{r.status_code} {r.reason}")
            return r

        r = with_retries(
            attempt, self.retry, f"Redmine at {self.url} ({what})", self._sleep or time.sleep
        )
        if r.status_code in (401, 403):
            raise TrackerAuthError(
                f"Redmine at {self.url} refused the API key from ${self.key_env} "
                f"({r.status_code}) while trying to {what}",
                hint="check the key (My account > API access key), that the REST API is "
                "enabled, and that its user may see and edit the issue",
            )
        if r.status_code == 404:
            raise TrackerNotFound(f"Redmine at {self.url}: {what}: not found (404)")
        if not r.ok:
            raise UsageError(
                f"Redmine at {self.url} refused to {what} ({r.status_code}): {self._errors(r)}"
            )
        return r

    def _errors(self, r: requests.Response) -> str:
        try:
            errors = r.json().get("errors")
            text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else r.text
        except ValueError:
            text = r.text
        return redact(text.strip()[:300], [self._key]) or r.reason

    def _json(self, r: requests.Response, what: str) -> dict[str, Any]:
        try:
            data = r.json()
        except ValueError:
            raise TrackerUnavailable(
                f"Redmine at {self.url} answered {what} with something that is not JSON",
                hint="is the URL the Redmine root (not a login page or proxy)?",
            ) from None
        if not isinstance(data, dict):
            raise TrackerUnavailable(f"Redmine at {self.url} answered {what} with unexpected JSON")
        return data

    def _issue(self, issue_id: int) -> dict[str, Any]:
        what = f"read issue #{issue_id}"
        try:
            r = self._request(
                "GET",
                f"/issues/{issue_id}.json",
                params={"include": "attachments,journals"},
                what=what,
            )
        except TrackerNotFound:
            raise TrackerNotFound(
                f"Redmine at {self.url} has no issue #{issue_id} "
                f"(or the key from ${self.key_env} may not see it)"
            ) from None
        issue = self._json(r, what).get("issue")
        if not isinstance(issue, dict):
            raise TrackerUnavailable(f"Redmine at {self.url}: no issue in the answer to {what}")
        return issue

    # ---- attach ------------------------------------------------------------------------

    def attach(self, ticket: str, files: list[Path], comment: str) -> AttachResult:
        issue_id = _issue_id(ticket)
        todo = files_of(files)
        result = AttachResult(
            tracker=self.name, ticket=str(issue_id), url=f"{self.url}/issues/{issue_id}"
        )
        try:
            issue = self._issue(issue_id)
        except Exhausted as exc:
            raise self._unavailable(exc, [], [f.name for f in todo]) from None
        except RedirectRefused as exc:
            exc.not_attached = [f.name for f in todo]
            raise
        try:
            self._check_project(issue, issue_id)
            existing = issue.get("attachments") or []
            new: list[LocalFile] = []
            for f in todo:
                if _present(f, existing):
                    result.already.append(f.name)
                else:
                    new.append(f)
            text = comment.strip()
            said = any((j.get("notes") or "").strip() == text for j in issue.get("journals") or [])
            changes = self._changes(issue, issue_id)
            note = bool(text) and (bool(new) or not said)
            if not new and not note and not changes:
                return result
            uploads = [self._upload(f) for f in new]
            body: dict[str, Any] = dict(changes)
            if note:
                body["notes"] = text
            if uploads:
                body["uploads"] = uploads
            self._request(
                "PUT",
                f"/issues/{issue_id}.json",
                json_body={"issue": body},
                what=f"update issue #{issue_id}",
            )
        except Exhausted as exc:
            raise self._unavailable(
                exc, [], [f.name for f in todo if f.name not in result.already]
            ) from None
        except RedirectRefused as exc:  # all files go in the one PUT: none is on the issue
            exc.not_attached = [f.name for f in todo if f.name not in result.already]
            raise
        result.attached = [f.name for f in new]
        after = self._after(issue_id)
        if note:
            result.comment = _journal_url(self.url, issue_id, after, text)
        self._record(result, new, after)
        return result

    def _upload(self, f: LocalFile) -> dict[str, Any]:
        r = self._request(
            "POST",
            "/uploads.json",
            params={"filename": f.name},
            upload=f.path,
            what=f"upload {f.name}",
        )
        token = self._json(r, f"upload {f.name}").get("upload", {}).get("token")
        if not token:
            raise TrackerUnavailable(f"Redmine at {self.url} gave no upload token for {f.name}")
        return {"token": token, "filename": f.name, "content_type": _content_type(f.name)}

    def _after(self, issue_id: int) -> dict[str, Any] | None:
        """The issue after the update (for attachment and note URLs); None if it cannot be read
        now: the update itself went through."""
        try:
            return self._issue(issue_id)
        except (Exhausted, TrackerUnavailable, UsageError):
            return None

    def _check_project(self, issue: dict[str, Any], issue_id: int) -> None:
        if not self.project:
            return
        proj = issue.get("project") or {}
        try:
            r = self._request(
                "GET", f"/projects/{self.project}.json", what=f"read project {self.project}"
            )
        except TrackerNotFound:
            raise TrackerNotFound(
                f"Redmine at {self.url} has no project {self.project!r} "
                f"(or the key from ${self.key_env} may not see it)"
            ) from None
        want = self._json(r, "project").get("project") or {}
        if want.get("id") != proj.get("id"):
            raise TrackerNotFound(
                f"Redmine issue #{issue_id} is in project {proj.get('name')!r}, "
                f"not {self.project!r} as configured for tracker {self.name}"
            )

    def _changes(self, issue: dict[str, Any], issue_id: int) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.status and (issue.get("status") or {}).get("name") != self.status:
            r = self._request("GET", "/issue_statuses.json", what="list issue statuses")
            statuses = self._json(r, "issue statuses").get("issue_statuses") or []
            match = [s for s in statuses if str(s.get("name", "")).lower() == self.status.lower()]
            if not match:
                names = ", ".join(str(s.get("name")) for s in statuses)
                raise UsageError(
                    f"Redmine at {self.url} has no status {self.status!r} (it has: {names})"
                )
            if match[0].get("id") != (issue.get("status") or {}).get("id"):
                changes["status_id"] = match[0]["id"]
        if self.custom_fields:
            fields = issue.get("custom_fields") or []
            out = []
            for key, value in self.custom_fields.items():
                cf = [c for c in fields if str(c.get("id")) == key or c.get("name") == key]
                if not cf:
                    names = ", ".join(str(c.get("name")) for c in fields) or "none"
                    raise UsageError(
                        f"Redmine issue #{issue_id} has no custom field {key!r} (it has: {names})"
                    )
                if str(cf[0].get("value") or "") != value:
                    out.append({"id": cf[0]["id"], "value": value})
            if out:
                changes["custom_fields"] = out
        return changes

    def _record(
        self, result: AttachResult, new: list[LocalFile], after: dict[str, Any] | None
    ) -> None:
        atts = (after or {}).get("attachments") or []
        placed: list[tuple[Any, str | None]] = []
        for f in new:
            where = result.url
            for a in reversed(atts):
                if a.get("filename") == f.name and _same(f, a):
                    where = a.get("content_url") or f"{self.url}/attachments/{a.get('id')}"
                    break
            placed.append((f, where))
        record_attach(self.index_dir, self.name, result, placed)

    def _unavailable(
        self, exc: Exhausted, attached: list[str], not_attached: list[str]
    ) -> TrackerUnavailable:
        return TrackerUnavailable(
            f"Redmine at {self.url} did not answer: {redact(exc.reason, [self._key])} "
            f"(after {exc.attempts} attempts); attached: {', '.join(attached) or 'nothing'}; "
            f"not attached: {', '.join(not_attached) or 'nothing'}",
            hint="rerun when it is back: files already on the issue are not sent again",
            attached=attached,
            not_attached=not_attached,
        )


def _issue_id(ticket: str) -> int:
    t = ticket.strip().removeprefix("#")
    if not t.isdigit() or int(t) <= 0:
        raise TrackerNotFound(f"{ticket!r} is not a Redmine issue number (expected e.g. 42 or #42)")
    return int(t)


def _same(f: LocalFile, att: dict[str, Any]) -> bool:
    digest = str(att.get("digest") or "").lower()
    if len(digest) == 64:
        return digest == f.sha256
    if len(digest) == 32:
        return digest == f.md5
    return att.get("filesize") == f.size


def _present(f: LocalFile, existing: list[dict[str, Any]]) -> bool:
    return any(a.get("filename") == f.name and _same(f, a) for a in existing)


def _journal_url(url: str, issue_id: int, issue: dict[str, Any] | None, text: str) -> str:
    for j in reversed((issue or {}).get("journals") or []):
        if (j.get("notes") or "").strip() == text and j.get("id"):
            return f"{url}/issues/{issue_id}#change-{j['id']}"
    return f"{url}/issues/{issue_id}"


def _content_type(name: str) -> str:
    if name.endswith((".tar.gz", ".tgz")):
        return "application/gzip"
    if name.endswith((".html", ".htm")):
        return "text/html"
    if name.endswith(".json"):
        return "application/json"
    if name.endswith((".md", ".txt", ".log")):
        return "text/plain"
    return "application/octet-stream"
