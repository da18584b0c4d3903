"""A tracker never carries its key to another origin: a redirect elsewhere is refused, and the
second listener it points at records that nothing (no request, no header) ever arrived.

Two loopback listeners: the "tracker" (answers, or redirects) and the "elsewhere" listener on
another port that records every request with its headers. Redmine's answers are shaped as
Redmine 5 gives them; Jira's come from the recorded pairs of test_trackers_jira.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.errors import USAGE
from harness.trackers.config import RetryPolicy
from harness.trackers.local import read_index
from harness.trackers.redmine import RedmineTracker
from harness.trackers.retry import RedirectRefused, origin
from tests.unit.test_trackers_jira import EMAIL, TOKEN, FakeJira
from tests.unit.test_trackers_jira import tracker as jira_tracker

KEY = "0123456789abcdef0123456789abcdef01234567"
Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON payload (None: no body)
Route = Callable[[BaseHTTPRequestHandler, str, bytes], Answer]


class Listener:
    """A loopback HTTP server answering with `route`; records method, path and headers."""

    def __init__(self, route: Route) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def _go(self) -> None:
                me.seen.append((self.command, self.path, dict(self.headers.items())))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = route(self, self.command, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _go

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Listener]:
    """The redirect target: records whatever reaches it (nothing must)."""
    srv = Listener(lambda h, m, b: (200, {}, {"issue": {"id": 1}}))
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    bundle = tmp_path / "SUP-123-run7.tar.gz"
    bundle.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    report = tmp_path / "report.html"
    report.write_text("<html>REPRODUCED 3/3</html>")
    return [bundle, report]


def redmine(url: str, tmp_path: Path) -> RedmineTracker:
    return RedmineTracker(
        name="redmine-lab",
        url=url,
        api_key=KEY,
        key_env="LABHARNESS_REDMINE_KEY",
        index_dir=tmp_path / "escalations",
        retry=RetryPolicy(delays=(0.01,), timeout=5),
        sleep=lambda s: None,
    )


ISSUE = {"issue": {"id": 1, "project": {"id": 1}, "attachments": [], "journals": []}}


def test_redmine_redirect_to_another_port_is_refused_and_the_key_never_arrives(
    tmp_path: Path, files: list[Path], elsewhere: Listener
) -> None:
    def route(h: BaseHTTPRequestHandler, method: str, body: bytes) -> Answer:
        return 302, {"Location": f"{elsewhere.url}{h.path}"}, None

    tracker_srv = Listener(route)
    try:
        with pytest.raises(RedirectRefused) as e:
            redmine(tracker_srv.url, tmp_path).attach("1", files, "note")
    finally:
        tracker_srv.close()
    assert elsewhere.seen == []  # not a request, so not a header: the key stayed home
    assert [(m, p) for m, p, _ in tracker_srv.seen] == [
        ("GET", "/issues/1.json?include=attachments%2Cjournals")
    ]
    msg = str(e.value)
    assert e.value.exit_code == USAGE
    assert f"with 302 to {elsewhere.url}/issues/1.json, another origin" in msg
    assert "$LABHARNESS_REDMINE_KEY was not sent there" in msg
    assert "include=" not in e.value.target and KEY not in msg + str(e.value.hint)
    assert e.value.attached == [] and e.value.not_attached == [f.name for f in files]
    assert read_index(tmp_path / "escalations") == []


def test_redmine_same_origin_redirect_is_followed_but_upload_redirect_elsewhere_is_not(
    tmp_path: Path, files: list[Path], elsewhere: Listener
) -> None:
    def route(h: BaseHTTPRequestHandler, method: str, body: bytes) -> Answer:
        if method == "GET" and h.path.startswith("/issues/1.json"):
            return 301, {"Location": "/moved" + h.path}, None  # relative: same origin
        if method == "GET" and h.path.startswith("/moved/issues/1.json"):
            return 200, {}, ISSUE
        if method == "POST" and h.path.startswith("/uploads.json"):
            return 307, {"Location": f"{elsewhere.url}/uploads.json"}, None
        return 500, {}, {"errors": [f"unexpected {method} {h.path}"]}

    tracker_srv = Listener(route)
    try:
        with pytest.raises(RedirectRefused) as e:
            redmine(tracker_srv.url, tmp_path).attach("1", files, "note")
    finally:
        tracker_srv.close()
    assert elsewhere.seen == []
    got = [(m, p.split("?")[0], hd.get("X-Redmine-API-Key")) for m, p, hd in tracker_srv.seen]
    assert got == [
        ("GET", "/issues/1.json", KEY),
        ("GET", "/moved/issues/1.json", KEY),  # followed, within the origin
        ("POST", "/uploads.json", KEY),
    ]
    assert f"POST {tracker_srv.url}/uploads.json with 307 to {elsewhere.url}/uploads.json" in str(
        e.value
    )
    assert e.value.not_attached == [f.name for f in files]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000/x", True),
        ("http://Tracker.example", "http://tracker.example:80/", True),
        ("https://tracker.example", "https://tracker.example:443/a", True),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3001/", False),
        ("http://tracker.example", "https://tracker.example/", False),
        ("http://tracker.example", "http://tracker.example.evil/", False),
        ("http://tracker.example", "http://tracker.example:99999/", False),
    ],
)
def test_origin_is_scheme_host_and_port(a: str, b: str, same: bool) -> None:
    assert (origin(a) == origin(b)) is same


@pytest.fixture
def fake_jira(elsewhere: Listener) -> Iterator[tuple[Listener, FakeJira, dict[str, int]]]:
    """The recorded Jira, but answering 307 to `elsewhere` for the routes in `redirect`
    ("METHOD path" -> after how many such requests)."""
    fake = FakeJira()
    redirect: dict[str, int] = {}
    count: dict[str, int] = {}

    def route(h: BaseHTTPRequestHandler, method: str, body: bytes) -> Answer:
        key = f"{method} {h.path.split('?')[0]}"
        count[key] = count.get(key, 0) + 1
        if key in redirect and count[key] > redirect[key]:
            return 307, {"Location": f"{elsewhere.url}{h.path}"}, None
        h.rfile = io.BytesIO(body)  # FakeJira reads the body itself
        status, payload = fake.handle(h, method)
        return status, {}, payload

    srv = Listener(route)
    try:
        yield srv, fake, redirect
    finally:
        srv.close()
    assert fake.problems == []


def test_jira_handshake_redirect_elsewhere_is_refused(
    tmp_path: Path,
    files: list[Path],
    elsewhere: Listener,
    fake_jira: tuple[Listener, FakeJira, dict[str, int]],
) -> None:
    srv, fake, redirect = fake_jira
    redirect["GET /rest/api/2/serverInfo"] = 0
    with pytest.raises(RedirectRefused) as e:
        jira_tracker(srv.url, tmp_path, []).attach("SUP-123", files, "x")
    assert elsewhere.seen == [] and fake.log == []  # the handshake went no further
    assert e.value.exit_code == USAGE
    assert f"to {elsewhere.url}/rest/api/2/serverInfo" in str(e.value)
    assert TOKEN not in str(e.value) and EMAIL not in str(e.value)
    assert e.value.not_attached == [f.name for f in files]


def test_jira_redirect_after_one_file_says_what_reached_the_issue(
    tmp_path: Path,
    files: list[Path],
    elsewhere: Listener,
    fake_jira: tuple[Listener, FakeJira, dict[str, int]],
) -> None:
    srv, fake, redirect = fake_jira
    redirect["POST /rest/api/2/issue/SUP-123/attachments"] = 1
    with pytest.raises(RedirectRefused) as e:
        jira_tracker(srv.url, tmp_path, []).attach("SUP-123", files, "x")
    assert elsewhere.seen == []  # neither the Basic credentials nor the file went there
    assert e.value.attached == [files[0].name] and e.value.not_attached == [files[1].name]
    assert [a["filename"] for a in fake.issue["fields"]["attachment"]] == [files[0].name]
    assert [x["file"] for x in read_index(tmp_path / "escalations")] == [files[0].name]
