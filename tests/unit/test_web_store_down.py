"""A results store that stops answering: every page is a clear 503 (HTML for the pages, JSON under
/api) naming the store without its password, the server keeps answering meanwhile, and the same
application serves again once the store is back."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from harness.store.db import Store
from harness.web import create_app
from tests.unit.webkit import build, parse

PAGES = ["/", "/runs/r1", "/verifications/v1", "/matrices/matrix-small", "/gates", "/rates"]
APIS = ["/api/runs", "/api/runs/r1", "/api/matrices", "/api/escalations", "/api/about"]


def _down(c: TestClient, shown: str) -> None:
    for url in PAGES:
        r = c.get(url)
        assert r.status_code == 503, (url, r.status_code)
        assert r.headers["retry-after"] == "5"
        doc = parse(r.text)
        assert doc.one("h1").text() == "The results store does not answer"
        assert "works again when it does" in doc.text() and shown in doc.text()
        assert "Traceback" not in r.text and "SELECT" not in r.text
    for url in APIS:
        r = c.get(url)
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["store"] == shown and "does not answer" in body["detail"]
        assert "SELECT" not in body["detail"]
    # what needs no database is still served, so the server is alive and says so
    assert c.get("/static/dashboard.css").status_code == 200
    assert c.get("/openapi.json").status_code == 200


def test_sqlite_store_gone_then_back(tmp_path: Path) -> None:
    ix = build(tmp_path)
    db = ix.root / "index.sqlite"
    store = Store.open(ix.url, readonly=True)
    try:
        with TestClient(create_app(store, ix.root)) as c:
            before = c.get("/api/runs").json()
            assert c.get("/").status_code == 200
            db.rename(tmp_path / "index.sqlite.away")
            store.engine.dispose()  # the open connection lost, as a restart or a network drop
            _down(c, store.shown)
            _down(c, store.shown)  # and again: nothing wedged
            (tmp_path / "index.sqlite.away").rename(db)
            assert c.get("/").status_code == 200
            assert c.get("/api/runs").json() == before
            # replaced by something that is no database at all
            db.rename(tmp_path / "index.sqlite.away")
            db.write_bytes(b"this is not a database" * 100)
            store.engine.dispose()
            _down(c, store.shown)
            db.unlink()
            (tmp_path / "index.sqlite.away").rename(db)
            assert c.get("/api/runs").json() == before
            assert c.get("/runs/r1").status_code == 200
    finally:
        store.close()


def test_unreachable_postgresql_never_shows_its_password(tmp_path: Path) -> None:
    # nothing listens on port 1: the connection is refused at the first query
    store = Store("postgresql+psycopg://lab:s3cret-pw@127.0.0.1:1/lab", readonly=True)
    try:
        with TestClient(create_app(store, tmp_path)) as c:
            shown = "postgresql+psycopg://lab:***@127.0.0.1:1/lab"
            assert store.shown == shown
            _down(c, shown)
            for url in [*PAGES, *APIS]:
                assert "s3cret-pw" not in c.get(url).text
    finally:
        store.close()
