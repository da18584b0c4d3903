"""Jira through the `jira` library against a local stdlib HTTP server.

No Jira server runs here. The server below answers the four endpoints the tracker uses with
JSON shaped as in Atlassian's REST v2 documentation (Cloud platform: "Get Jira instance info",
"Get issue", "Add comment", "Add attachment"), recorded here, not live. It checks every request:
method, path, Basic auth, and for attachments X-Atlassian-Token: no-check with a multipart body
whose part is named `file`. Anything unexpected fails the test.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.errors import INFRA, USAGE
from harness.trackers import TrackerAuthError, TrackerNotFound, TrackerUnavailable, get_tracker
from harness.trackers.config import RetryPolicy
from harness.trackers.jira import JiraTracker
from harness.trackers.local import index, read_index

EMAIL, TOKEN = "engineer@example.com", "ATATT3xFfGF0-test-token-value"
BASE = "https://your-domain.atlassian.net"

# GET /rest/api/2/serverInfo (documented example; deploymentType as Cloud answers)
SERVER_INFO = {
    "baseUrl": BASE,
    "buildDate": "2020-03-26T22:20:59.000+0000",
    "buildNumber": 582,
    "defaultLocale": {"locale": "en_AU"},
    "deploymentType": "Cloud",
    "scmInfo": "1f51473f5c7b75c1a69a0090f4832cdc5053702a",
    "serverTime": "2020-03-31T16:43:50.000+0000",
    "serverTitle": "My Jira instance",
    "version": "1001.0.0-SNAPSHOT",
    "versionNumbers": [5, 0, 0],
}
AUTHOR = {
    "accountId": "5b10a2844c20165700ede21g",
    "active": False,
    "displayName": "Mia Krystof",
    "self": f"{BASE}/rest/api/2/user?accountId=5b10a2844c20165700ede21g",
}
# GET /rest/api/2/issue/{key}?fields=attachment,comment
ISSUE: dict[str, Any] = {
    "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
    "id": "10002",
    "key": "SUP-123",
    "self": f"{BASE}/rest/api/2/issue/10002",
    "fields": {
        "attachment": [],
        "comment": {"comments": [], "maxResults": 0, "startAt": 0, "total": 0},
    },
}
# one element of the POST /rest/api/2/issue/{key}/attachments answer (a list)
ATTACHMENT = {
    "author": AUTHOR,
    "content": f"{BASE}/rest/api/2/attachment/content/10001",
    "created": "2022-10-06T07:32:47.000+0000",
    "filename": "picture.jpg",
    "id": 10001,
    "mimeType": "image/jpeg",
    "self": f"{BASE}/rest/api/2/attachments/10000",
    "size": 23123,
    "thumbnail": f"{BASE}/rest/api/2/attachment/thumbnail/10002",
}
# POST /rest/api/2/issue/{key}/comment answer
COMMENT = {
    "author": AUTHOR,
    "body": "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "created": "2021-01-17T12:34:00.000+0000",
    "id": "10000",
    "self": f"{BASE}/rest/api/2/issue/10010/comment/10000",
    "updateAuthor": AUTHOR,
    "updated": "2021-01-18T23:45:00.000+0000",
}


class FakeJira:
    """State behind the documented answers, plus fault injection and a request log."""

    def __init__(self) -> None:
        self.issue: dict[str, Any] = copy.deepcopy(ISSUE)
        self.log: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.fail: dict[str, list[int]] = {}  # "METHOD path" -> statuses to answer first
        self.always_fail: dict[str, int] = {}
        self.next_id = 10001

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        url = urlsplit(h.path)
        path, query = url.path, parse_qs(url.query)
        self.log.append((method, path))
        key = f"{method} {path}"
        if key in self.always_fail:
            return self.always_fail[key], {"errorMessages": ["Service Unavailable"]}
        if self.fail.get(key):
            return self.fail[key].pop(0), {"errorMessages": ["Service Unavailable"]}
        want = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
        if h.headers.get("Authorization") != want:
            return 401, {"errorMessages": ["Client must be authenticated"], "errors": {}}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if method == "GET" and path == "/rest/api/2/serverInfo":
            return 200, SERVER_INFO
        if path.startswith("/rest/api/2/issue/") and not path.startswith(
            "/rest/api/2/issue/SUP-123"
        ):
            return 404, {"errorMessages": ["Issue does not exist or you do not have permission"]}
        if method == "GET" and path == "/rest/api/2/issue/SUP-123":
            if query.get("fields") != ["attachment,comment"]:
                self.problems.append(f"GET issue without fields=attachment,comment: {query}")
            return 200, self.issue
        if method == "POST" and path == "/rest/api/2/issue/SUP-123/attachments":
            if h.headers.get("X-Atlassian-Token") != "no-check":
                self.problems.append("attachment POST without X-Atlassian-Token: no-check")
                return 403, {"errorMessages": ["XSRF check failed"]}
            ctype = h.headers.get("Content-Type", "")
            if not ctype.startswith("multipart/form-data; boundary="):
                self.problems.append(f"attachment POST with Content-Type {ctype}")
            boundary = ctype.split("boundary=", 1)[-1].encode()
            part = body.split(b"--" + boundary)[1]
            head, _, content = part.partition(b"\r\n\r\n")
            if b'name="file"' not in head:
                self.problems.append("multipart part is not named file")
            name = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
            content = content.removesuffix(b"\r\n")
            att = dict(ATTACHMENT, filename=name, size=len(content), id=self.next_id)
            att["content"] = f"{BASE}/rest/api/2/attachment/content/{self.next_id}"
            self.next_id += 1
            self.issue["fields"]["attachment"].append(att)
            return 200, [att]
        if method == "POST" and path == "/rest/api/2/issue/SUP-123/comment":
            text = json.loads(body)["body"]
            com = dict(COMMENT, body=text, id=str(self.next_id))
            self.next_id += 1
            comments = self.issue["fields"]["comment"]
            comments["comments"].append(com)
            comments["total"] = comments["maxResults"] = len(comments["comments"])
            return 201, com
        self.problems.append(f"unexpected {method} {h.path}")
        return 404, {"errorMessages": ["not part of the recorded pairs"]}


@pytest.fixture
def jira_server() -> Iterator[tuple[str, FakeJira]]:
    fake = FakeJira()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            status, payload = fake.handle(self, method)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
    assert fake.problems == []


def tracker(url: str, tmp_path: Path, sleeps: list[float], token: str = TOKEN) -> JiraTracker:
    return JiraTracker(
        name="jira",
        url=url,
        email=EMAIL,
        email_env="LABHARNESS_JIRA_EMAIL",
        token=token,
        token_env="LABHARNESS_JIRA_TOKEN",
        index_dir=tmp_path / "escalations",
        retry=RetryPolicy(delays=(0.5, 1.0, 2.0, 4.0), timeout=5),
        sleep=sleeps.append,
    )


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    bundle = tmp_path / "SUP-123-run7.tar.gz"
    bundle.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    report = tmp_path / "report.html"
    report.write_text("<html>REPRODUCED 3/3</html>")
    return [bundle, report]


def test_attach_then_attach_again(
    jira_server: tuple[str, FakeJira], tmp_path: Path, files: list[Path]
) -> None:
    url, fake = jira_server
    sleeps: list[float] = []
    t = tracker(url, tmp_path, sleeps)
    res = t.attach("SUP-123", files, "Reproduced 3/3; bundle attached")
    assert res.attached == ["SUP-123-run7.tar.gz", "report.html"] and res.already == []
    assert res.url == f"{url}/browse/SUP-123"
    assert res.comment == f"{url}/browse/SUP-123?focusedCommentId=10003"
    atts = fake.issue["fields"]["attachment"]
    assert [(a["filename"], a["size"]) for a in atts] == [
        ("SUP-123-run7.tar.gz", 1026),
        ("report.html", len("<html>REPRODUCED 3/3</html>")),
    ]
    assert fake.log == [
        ("GET", "/rest/api/2/serverInfo"),
        ("GET", "/rest/api/2/issue/SUP-123"),
        ("POST", "/rest/api/2/issue/SUP-123/attachments"),
        ("POST", "/rest/api/2/issue/SUP-123/attachments"),
        ("POST", "/rest/api/2/issue/SUP-123/comment"),
    ]
    entries = read_index(tmp_path / "escalations")
    assert [(e["tracker"], e["ticket"], e["file"]) for e in entries] == [
        ("jira", "SUP-123", "SUP-123-run7.tar.gz"),
        ("jira", "SUP-123", "report.html"),
    ]
    assert entries[0]["where"] == f"{BASE}/rest/api/2/attachment/content/10001"

    fake.log.clear()
    again = t.attach("sup-123", files, "Reproduced 3/3; bundle attached")
    assert again.attached == [] and again.already == ["SUP-123-run7.tar.gz", "report.html"]
    assert again.comment is None
    assert [m for m, _ in fake.log] == ["GET", "GET"]  # serverInfo + issue: nothing posted
    assert sleeps == []


def test_bad_token(jira_server: tuple[str, FakeJira], tmp_path: Path, files: list[Path]) -> None:
    url, _ = jira_server
    bad = "wrong-token-123456"
    with pytest.raises(TrackerAuthError) as e:
        tracker(url, tmp_path, [], token=bad).attach("SUP-123", files, "x")
    assert e.value.exit_code == USAGE
    assert "refused the credentials from $LABHARNESS_JIRA_EMAIL and $LABHARNESS_JIRA_TOKEN" in str(
        e.value
    )
    assert "(401)" in str(e.value) and bad not in str(e.value) and TOKEN not in str(e.value)


def test_no_such_issue(
    jira_server: tuple[str, FakeJira], tmp_path: Path, files: list[Path]
) -> None:
    url, _ = jira_server
    with pytest.raises(TrackerNotFound, match="has no issue SUP-999"):
        tracker(url, tmp_path, []).attach("SUP-999", files, "x")
    with pytest.raises(TrackerNotFound, match="not a Jira issue key"):
        tracker(url, tmp_path, []).attach("42", files, "x")


def test_503_is_retried_with_backoff(
    jira_server: tuple[str, FakeJira], tmp_path: Path, files: list[Path]
) -> None:
    url, fake = jira_server
    fake.fail["GET /rest/api/2/issue/SUP-123"] = [503, 502]
    sleeps: list[float] = []
    res = tracker(url, tmp_path, sleeps).attach("SUP-123", files, "after a hiccup")
    assert sleeps == [0.5, 1.0]
    assert res.attached == ["SUP-123-run7.tar.gz", "report.html"]


def test_partial_failure_says_what_reached_the_issue(
    jira_server: tuple[str, FakeJira], tmp_path: Path, files: list[Path]
) -> None:
    url, fake = jira_server
    t = tracker(url, tmp_path, [])
    orig = fake.handle

    def second_attachment_fails(h: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        if (
            method == "POST"
            and h.path.endswith("/attachments")
            and fake.issue["fields"]["attachment"]
        ):
            fake.log.append((method, h.path))
            return 503, {"errorMessages": ["down"]}
        return orig(h, method)

    fake.handle = second_attachment_fails  # type: ignore[method-assign]
    with pytest.raises(TrackerUnavailable) as e:
        t.attach("SUP-123", files, "x")
    assert e.value.exit_code == INFRA
    assert e.value.attached == ["SUP-123-run7.tar.gz"] and e.value.not_attached == ["report.html"]
    assert fake.log.count(("POST", "/rest/api/2/issue/SUP-123/attachments")) == 1 + 5
    assert [e["file"] for e in read_index(tmp_path / "escalations")] == ["SUP-123-run7.tar.gz"]


def test_down_is_retried_then_unavailable(tmp_path: Path, files: list[Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    sleeps: list[float] = []
    with pytest.raises(TrackerUnavailable) as e:
        tracker(f"http://127.0.0.1:{port}", tmp_path, sleeps).attach("SUP-123", files, "x")
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert "connection refused" in str(e.value) and "after 5 attempts" in str(e.value)
    assert e.value.attached == [] and e.value.not_attached == ["SUP-123-run7.tar.gz", "report.html"]


def test_from_config(
    jira_server: tuple[str, FakeJira],
    tmp_path: Path,
    files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = jira_server
    (tmp_path / "trackers.yaml").write_text(
        f"trackers:\n  jira:\n    kind: jira\n    url: {url}\n    project: SUP\n"
        "    email_env: LABHARNESS_JIRA_EMAIL\n    token_env: LABHARNESS_JIRA_TOKEN\n"
        "    retries: [0.01]\n"
    )
    monkeypatch.setenv("LABHARNESS_JIRA_EMAIL", EMAIL)
    monkeypatch.setenv("LABHARNESS_JIRA_TOKEN", TOKEN)
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    t = get_tracker("jira", root=tmp_path)
    assert t.attach("SUP-123", files[1:], "from the config").attached == ["report.html"]
    assert [e["file"] for e in index(tmp_path)] == ["report.html"]
    with pytest.raises(TrackerNotFound, match="not in project SUP"):
        t.attach("OPS-1", files, "x")
