"""No path from a URL to a file outside the indexed report folders: traversal in every spelling
(plain, percent-encoded, double-encoded, backslashes, NUL, absolute), sent through the HTTP
client and raw to the application (no client normalising dots on the way), symlinks out of a
run folder and a run folder that is itself a symlink out, folders the index does not name, and
index rows whose folder points outside: all 404, never a byte of what lies outside."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.store.db import Store
from harness.web import create_app
from harness.web.files import FILE_CSP, ReportFiles, clean_parts
from tests.unit.webkit import SECRET, Index, build, parse, run

SQLITE = b"SQLite format 3"


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> Index:
    ix = build(tmp_path_factory.mktemp("files"))
    # a folder under the root the index does not name, and a symlink inside a folder that
    # stays inside it
    (ix.root / "quick-repro" / "unindexed").mkdir()
    (ix.root / "quick-repro" / "unindexed" / "report.html").write_bytes(SECRET)
    os.symlink("web/access.log", ix.root / "quick-repro" / "r1" / "artifacts" / "alias.log")
    return ix


@pytest.fixture(scope="module")
def app(ix: Index) -> Iterator[Any]:
    store = Store.open(ix.url, readonly=True)
    try:
        yield create_app(store, ix.root)
    finally:
        store.close()


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def refused(status: int, body: bytes) -> None:
    assert status == 404, (status, body[:300])
    assert SECRET not in body and SQLITE not in body


TRAVERSALS = [
    "/reports/quick-repro/r1/../../../secret.txt",
    "/reports/quick-repro/r1/../../index.sqlite",
    "/reports/quick-repro/r1/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/reports/quick-repro/r1/%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
    "/reports/quick-repro/r1/..%2f..%2f..%2fsecret.txt",
    "/reports/quick-repro/r1%2f..%2f..%2findex.sqlite",
    "/reports/..%2findex.sqlite",
    "/reports/%2e%2e/secret.txt",
    "/reports/quick-repro/r1/%252e%252e/%252e%252e/%252e%252e/secret.txt",  # double-encoded
    "/reports/quick-repro/r1/..%5c..%5c..%5csecret.txt",  # backslashes
    "/reports/quick-repro/r1/..\\..\\index.sqlite",
    "/reports/quick-repro/r1/report.html%00",
    "/reports/quick-repro/r1/%00/../../index.sqlite",
    "/reports/%2Fetc%2Fpasswd",
    "/reports//etc/passwd",
    "/reports/index.sqlite",  # the store itself: in no report folder
    "/reports/index.sqlite-wal",
    "/reports/quick-repro/r1/artifacts/leak.txt",  # a symlink out of the run folder
    "/reports/quick-repro/out1/report.html",  # an indexed folder that is a symlink out
    "/reports/quick-repro/out1/",
    "/reports/quick-repro/unindexed/report.html",  # under the root, named by no result
    "/reports/quick-repro/",
    "/reports/",
    "/reports/quick-repro//r1/report.html",
    "/reports/~/.bashrc",
    "/reports/quick-repro/r1/%7e/.bashrc",
    "/reports/quick-repro/r1/missing.html",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_traversal_through_the_client_is_404(client: TestClient, url: str) -> None:
    r = client.get(url, follow_redirects=True)
    refused(r.status_code, r.content)


def raw_get(app: Any, path: str) -> tuple[int, bytes]:
    """One GET straight into the ASGI application, the path exactly as given."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"", "root_path": "", "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip

    async def main() -> None:
        done = asyncio.Event()
        asked = [False]

        async def receive() -> dict[str, Any]:
            if not asked[0]:
                asked[0] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client goes away once the whole answer is in
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await app(scope, receive, send)

    asyncio.run(main())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "path",
    [
        "/reports/quick-repro/r1/../../../secret.txt",
        "/reports/quick-repro/r1/../../index.sqlite",
        "/reports/../secret.txt",
        "/reports/quick-repro/r1/artifacts/../../../../secret.txt",
        "/reports/quick-repro/r1/./../../index.sqlite",
        "/reports/./quick-repro/r1/report.html",  # a client would normalise these dots away
        "/reports/quick-repro/./r1/report.html",
        "/reports/quick-repro/r1/\x00/../../index.sqlite",
        "/reports/quick-repro/r1/..\\..\\..\\secret.txt",
    ],
)
def test_raw_traversal_into_the_app_is_404(app: Any, path: str) -> None:
    refused(*raw_get(app, path))


def test_raw_plain_path_is_served(app: Any) -> None:
    status, body = raw_get(app, "/reports/quick-repro/r1/report.html")
    assert status == 200 and b"run r1" in body


def test_a_runs_own_files_are_served_sandboxed(client: TestClient) -> None:
    r = client.get("/reports/quick-repro/r1/report.html")
    assert r.status_code == 200 and "<h1>run r1</h1>" in r.text
    assert r.headers["content-security-policy"] == FILE_CSP and "sandbox" in FILE_CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    alias = client.get("/reports/quick-repro/r1/artifacts/alias.log")  # a symlink kept inside
    assert alias.status_code == 200 and alias.text == "GET /status.html 404\n"
    pcap = client.get("/reports/quick-repro/r1/captures/lan.pcap")
    assert pcap.status_code == 200 and pcap.content.startswith(b"\xd4\xc3\xb2\xa1")
    assert client.get("/reports/quick-repro/v1/verification.json").status_code == 200
    assert client.get("/reports/matrix-small/m3/matrix.html").status_code == 200


def test_a_folder_lists_what_may_be_served(client: TestClient) -> None:
    moved = client.get("/reports/quick-repro/r1/artifacts", follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["location"] == "/reports/quick-repro/r1/artifacts/"
    listing = client.get("/reports/quick-repro/r1/artifacts/")
    assert listing.status_code == 200
    hrefs = parse(listing.text).one("ul", "files").links()
    assert hrefs == ["../", "alias.log", "web/"]
    assert "leak.txt" not in listing.text
    top = parse(client.get("/reports/quick-repro/r1/").text).one("ul", "files").links()
    assert "../" not in top and "report.html" in top  # the run folder's top: no way up
    assert "artifacts/" in top


def test_a_run_page_lists_no_symlink_out(client: TestClient) -> None:
    paths = [f["path"] for f in client.get("/api/runs/r1").json()["files"]]
    assert "artifacts/alias.log" in paths and "artifacts/leak.txt" not in paths
    out = client.get("/api/runs/out1").json()  # its folder is a symlink out of the root
    assert out["files"] == [] and out["report_url"] is None


@pytest.mark.parametrize(
    "folder", ["..", "../..", "/etc", "quick-repro/../..", "quick-repro/r1/../../..", ".", ""]
)
def test_index_rows_naming_folders_outside_serve_nothing(tmp_path: Path, folder: str) -> None:
    ix = build(tmp_path)
    store = Store.open(ix.url)
    store.upsert([run("evil", "2026-04-01T00:00:00.000+00:00", folder=folder)])
    store.close()
    files = ReportFiles(ix.root)
    assert files.folder(folder) is None and files.listing(folder) == ([], False)
    assert files.url(folder, "secret.txt") is None and files.url(folder, "index.sqlite") is None
    store = Store.open(ix.url, readonly=True)
    try:
        with TestClient(create_app(store, ix.root)) as c:
            data = c.get("/api/runs/evil").json()
            assert data["files"] == [] and data["report_url"] is None
            for url in ("/reports/secret.txt", "/reports/../secret.txt", "/reports/index.sqlite"):
                r = c.get(url)
                refused(r.status_code, r.content)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("a/b/report.html", ["a", "b", "report.html"]),
        ("a/b/", ["a", "b"]),
        ("a/../b", None),
        ("../a", None),
        ("a/./b", None),
        ("a//b", None),
        ("/a/b", None),
        ("a\\..\\b", None),
        ("a/%2e%2e/b", None),
        ("a/b\x00", None),
        ("a/\nb", None),
        ("", None),
        ("/", None),
        ("..", None),
        ("a" * 2000, None),
    ],
)
def test_clean_parts(path: str, parts: list[str] | None) -> None:
    assert clean_parts(path) == parts
