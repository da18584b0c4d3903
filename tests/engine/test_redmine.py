"""The Redmine tracker against a real Redmine 5 (Debian packages), started once per session."""

from __future__ import annotations

import http.client
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from harness.errors import INFRA, USAGE
from harness.trackers import TrackerAuthError, TrackerNotFound, TrackerUnavailable, get_tracker
from harness.trackers.config import RetryPolicy
from harness.trackers.local import index, read_index
from harness.trackers.redmine import RedmineTracker
from tests.engine.redmine_server import Redmine, start

KEY_ENV = "LABHARNESS_REDMINE_KEY"


@pytest.fixture(scope="session")
def redmine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redmine]:
    cache = Path(os.environ.get("LABHARNESS_CACHE", Path.home() / ".cache" / "labharness"))
    rm = start(tmp_path_factory.mktemp("redmine"), cache / "redmine-test")
    print(f"\nredmine up: {', '.join(f'{k} {v:.1f}s' for k, v in rm.timings.items())}")
    try:
        yield rm
    finally:
        rm.stop()


def api(rm: Redmine, path: str) -> Any:
    r = requests.get(rm.url + path, headers={"X-Redmine-API-Key": rm.key}, timeout=10)
    r.raise_for_status()
    return r.json()


def tracker(
    rm: Redmine, tmp_path: Path, sleeps: list[float], url: str | None = None, key: str = ""
) -> RedmineTracker:
    return RedmineTracker(
        name="redmine-lab",
        url=url or rm.url,
        api_key=key or rm.key,
        key_env=KEY_ENV,
        project="support",
        index_dir=tmp_path / "escalations",
        retry=RetryPolicy(delays=(0.5, 1.0, 2.0, 4.0), timeout=10),
        sleep=sleeps.append,
    )


def evidence(tmp_path: Path, tag: str) -> list[Path]:
    bundle = tmp_path / f"SUP-48213-{tag}.tar.gz"
    bundle.write_bytes(b"\x1f\x8b" + os.urandom(3000))
    report = tmp_path / "report.html"
    report.write_text(f"<html>REPRODUCED 3/3 ({tag})</html>")
    return [bundle, report]


def test_attach_files_and_comment_then_again_adds_nothing(
    redmine: Redmine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "trackers.yaml").write_text(
        "trackers:\n  redmine-lab:\n    kind: redmine\n"
        f"    url: {redmine.url}\n    project: support\n    api_key_env: {KEY_ENV}\n"
        "    status: In Progress\n    custom_fields: {Customer: acme}\n    retries: [0.1]\n"
    )
    monkeypatch.setenv(KEY_ENV, redmine.key)
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    files = evidence(tmp_path, "run1")
    t = get_tracker("redmine-lab", root=tmp_path)
    res = t.attach("#1", files, "Reproduced 3/3 on debian-12; bundle and report attached.")
    assert res.attached == [f.name for f in files] and res.already == []
    assert res.url == f"{redmine.url}/issues/1"
    assert res.comment and res.comment.startswith(f"{redmine.url}/issues/1#change-")

    issue = api(redmine, "/issues/1.json?include=attachments,journals")["issue"]
    got = {a["filename"]: a["filesize"] for a in issue["attachments"]}
    assert got == {f.name: f.stat().st_size for f in files}
    notes = [j["notes"] for j in issue["journals"] if j["notes"]]
    assert notes == ["Reproduced 3/3 on debian-12; bundle and report attached."]
    assert issue["status"]["name"] == "In Progress"
    assert {c["name"]: c["value"] for c in issue["custom_fields"]} == {"Customer": "acme"}
    entries = index(tmp_path)
    assert [(e["tracker"], e["ticket"], e["file"]) for e in entries] == [
        ("redmine-lab", "1", files[0].name),
        ("redmine-lab", "1", "report.html"),
    ]
    assert entries[0]["where"].startswith(f"{redmine.url}/attachments/download/")

    again = t.attach("1", files, "Reproduced 3/3 on debian-12; bundle and report attached.")
    assert again.attached == [] and again.already == [f.name for f in files]
    assert again.comment is None
    after = api(redmine, "/issues/1.json?include=attachments,journals")["issue"]
    assert len(after["attachments"]) == 2 and len(after["journals"]) == len(issue["journals"])
    assert len(index(tmp_path)) == 2


def test_bad_key_is_refused(redmine: Redmine, tmp_path: Path) -> None:
    bad = "0" * 40
    with pytest.raises(TrackerAuthError) as e:
        tracker(redmine, tmp_path, [], key=bad).attach("2", evidence(tmp_path, "x"), "x")
    assert e.value.exit_code == USAGE
    assert f"Redmine at {redmine.url} refused the API key from ${KEY_ENV} (401)" in str(e.value)
    assert bad not in str(e.value) and redmine.key not in str(e.value)


def test_no_such_issue_or_other_project(redmine: Redmine, tmp_path: Path) -> None:
    t = tracker(redmine, tmp_path, [])
    with pytest.raises(TrackerNotFound, match="has no issue #999"):
        t.attach("999", evidence(tmp_path, "x"), "x")
    with pytest.raises(TrackerNotFound, match="not a Redmine issue number"):
        t.attach("SUP-1", evidence(tmp_path, "x"), "x")
    t.project = "nosuch"
    with pytest.raises(TrackerNotFound, match="no project 'nosuch'"):
        t.attach("2", evidence(tmp_path, "x"), "x")


def test_down_is_retried_then_unavailable(redmine: Redmine, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    sleeps: list[float] = []
    files = evidence(tmp_path, "down")
    with pytest.raises(TrackerUnavailable) as e:
        tracker(redmine, tmp_path, sleeps, url=closed).attach("2", files, "x")
    assert e.value.exit_code == INFRA
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert "connection refused" in str(e.value) and "after 5 attempts" in str(e.value)
    assert e.value.attached == [] and e.value.not_attached == [f.name for f in files]
    assert redmine.key not in str(e.value)
    assert read_index(tmp_path / "escalations") == []


class Flaky:
    """A loopback proxy to Redmine that answers 503 to the first `fail` requests of a kind."""

    def __init__(self, upstream: str, fail: dict[str, int]) -> None:
        self.upstream = urlsplit(upstream)
        self.fail = dict(fail)  # "METHOD /path-prefix" -> how many 503s
        self.seen: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _go(self) -> None:
                for key, n in proxy.fail.items():
                    method, prefix = key.split(" ", 1)
                    if n and self.command == method and self.path.startswith(prefix):
                        proxy.fail[key] = n - 1
                        proxy.seen.append((self.command, self.path, 503))
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname or "", proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                proxy.seen.append((self.command, self.path, r.status))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

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


def test_503_is_retried_with_backoff(redmine: Redmine, tmp_path: Path) -> None:
    proxy = Flaky(redmine.url, {"GET /issues/3.json": 2, "POST /uploads.json": 1, "PUT /": 1})
    try:
        sleeps: list[float] = []
        files = evidence(tmp_path, "flaky")
        res = tracker(redmine, tmp_path, sleeps, url=proxy.url).attach(
            "3", files, "via a flaky proxy"
        )
    finally:
        proxy.close()
    assert sleeps == [0.5, 1.0, 0.5, 0.5]  # 2 x GET issue, 1 x upload, 1 x PUT
    assert res.attached == [f.name for f in files]
    assert [s for _, _, s in proxy.seen].count(503) == 4
    issue = api(redmine, "/issues/3.json?include=attachments,journals")["issue"]
    assert sorted(a["filename"] for a in issue["attachments"]) == sorted(f.name for f in files)
    assert [j["notes"] for j in issue["journals"] if j["notes"]] == ["via a flaky proxy"]
