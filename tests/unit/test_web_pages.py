"""`lab serve`'s pages and their /api twins over a real SQLite index (tests/unit/webkit.py):
the runs list and its filters, a run, a verification side by side, the matrix heatmap with each
cell's history, gates with their regressions, rates with their Wilson intervals, escalations per
ticket; every page escaped, linked to its twin, fetching nothing from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.confidence import wilson
from harness.store.db import Store
from harness.web import create_app
from harness.web.models import RatePoint
from harness.web.trends import pooled
from tests.unit.webkit import REGRESSED, XSS, Index, build, parse

PAGES = ["/", "/verifications", "/matrices", "/gates", "/rates", "/escalations"]


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return build(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(ix: Index) -> Iterator[TestClient]:
    store = Store.open(ix.url, readonly=True)
    try:
        with TestClient(create_app(store, ix.root)) as c:
            yield c
    finally:
        store.close()


def page(client: TestClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    return parse(r.text)


def api(client: TestClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.text[:500])
    assert r.headers["content-type"] == "application/json"
    return r.json()


def run_links(doc: Any) -> list[str]:
    return [h.removeprefix("/runs/") for h in doc.links() if re.fullmatch(r"/runs/[^/?]+", h)]


# -- the runs list ------------------------------------------------------------------------------


def test_runs_newest_first_page_and_twin_agree(client: TestClient) -> None:
    data = api(client, "/api/runs")
    ids = [r["id"] for r in data["runs"]]
    assert ids[0] == "out1" and ids[-1] == "r1"  # newest first
    assert data["matched"] == len(ids) == 12
    assert [r["started"] for r in data["runs"]] == sorted(
        (r["started"] for r in data["runs"]), reverse=True
    )
    doc = page(client, "/")
    assert [i for i in run_links(doc) if i] == ids  # one link per row, same order
    assert set(data["choices"]["scenarios"]) == {"quick-repro", "matrix-small", XSS}
    by = {r["id"]: r for r in data["runs"]}
    assert by["r3"]["interval"] == wilson(3, 5).text()
    assert (
        by["b1"]["parent_kind"] == "verification" and by["b1"]["parent_url"] == "/verifications/v1"
    )
    assert by["m3-B"]["parent_url"] == "/matrices/matrix-small?matrix=m3"
    assert by["c1"]["fix"] == "add-page"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("scenario=matrix-small", {"m3-A", "m3-B", "m3-C", "m3-D"}),
        ("ticket=OUT-1", {"out1"}),
        ("verdict=NOT_REPRODUCED", {"r2", "c1", "m3-A"}),
        ("verdict=ERROR", {"r4", "m3-D"}),
        ("date_from=2026-03-10&date_to=2026-03-11", {"r3", "r4"}),  # both days included
        ("date_to=2026-03-01", {"r1"}),
        ("date_from=2026-03-14", {"out1"}),
        ("scenario=quick-repro&verdict=REPRODUCED&date_from=2026-03-02", {"r3", "b1", "out1"}),
        ("scenario=nothing-like-it", set()),
    ],
)
def test_runs_filters(client: TestClient, query: str, expected: set[str]) -> None:
    data = api(client, f"/api/runs?{query}")
    assert {r["id"] for r in data["runs"]} == expected
    assert data["matched"] == len(expected)
    doc = page(client, f"/?{query}")
    assert set(run_links(doc)) == expected
    assert doc.one("a", "twin").attrs["href"] == f"/api/runs?{query}"


def test_runs_filter_form_keeps_choices_and_empty_fields(client: TestClient) -> None:
    # a submitted form sends every field, the unused ones empty: read as no filter
    doc = page(client, "/?scenario=quick-repro&ticket=&verdict=&date_from=&date_to=")
    assert set(run_links(doc)) == {"r1", "r2", "r3", "r4", "b1", "c1", "out1"}
    chosen = doc.one("select", id="f-scenario").all("option", selected="")
    assert [o.text() for o in chosen] == ["quick-repro"]
    verdicts = [o.text() for o in doc.one("select", id="f-verdict").all("option")]
    assert verdicts == ["any", "ERROR", "NOT_REPRODUCED", "REPRODUCED"]


def test_runs_limit_and_bad_queries(client: TestClient) -> None:
    data = api(client, "/api/runs?limit=2")
    assert [r["id"] for r in data["runs"]] == ["out1", "x1"] and data["matched"] == 12
    bad_ones = ("date_from=yesterday", "date_to=2026-13-01", "date_to=0", "date_from=20260301",
                "limit=0", "limit=x")  # fmt: skip
    for bad in bad_ones:
        api(client, f"/api/runs?{bad}", status=422)
        doc = page(client, f"/?{bad}", status=422)
        assert "Bad query" in doc.text()


# -- one run, one verification ---------------------------------------------------------------


def test_run_page_summary_report_and_files(client: TestClient) -> None:
    data = api(client, "/api/runs/r1")
    assert data["run"]["verdict"] == "REPRODUCED" and data["run"]["rate"] == "2/2"
    assert data["run"]["interval"] == wilson(2, 2).text()
    assert data["report_url"] == "/reports/quick-repro/r1/report.html"
    files = {f["path"]: f for f in data["files"]}
    assert {"report.html", "journal.json", "REPRODUCE.md", "junit.xml"} <= set(files)
    assert "artifacts/web/access.log" in files and "captures/lan.pcap" in files
    assert "artifacts/leak.txt" not in files  # a symlink out of the folder is never listed
    assert files["artifacts/web/access.log"]["size"] == len("GET /status.html 404\n")
    doc = page(client, "/runs/r1")
    assert doc.one("a", "report-link").attrs["href"] == data["report_url"]
    assert "/reports/quick-repro/r1/artifacts/web/access.log" in doc.links()
    assert "nginx 1.22 on debian-12" in doc.text()
    report = client.get(data["report_url"])
    assert report.status_code == 200 and "<h1>run r1</h1>" in report.text
    log = client.get(files["artifacts/web/access.log"]["url"])
    assert log.text == "GET /status.html 404\n" and log.headers["content-type"].startswith(
        "text/plain"
    )


def test_unknown_results_are_404_on_both_sides(client: TestClient) -> None:
    for what in (
        "runs/nope",
        "verifications/nope",
        "matrices/nope",
        "matrices/matrix-small?matrix=zz",
    ):
        assert "the index holds no" in api(client, f"/api/{what}", status=404)["detail"]
        assert "the index holds no" in page(client, f"/{what}", status=404).text()
    page(client, "/no/such/page", status=404)
    assert api(client, "/api/no/such", status=404) == {"detail": "Not Found"}


def test_verification_side_by_side(client: TestClient) -> None:
    data = api(client, "/api/verifications/v1")
    assert data["verification"]["verdict"] == "FIXED" and data["verification"]["fix"] == "add-page"
    base, cand = data["baseline"], data["candidate"]
    assert (base["run"], base["verdict"], base["rate"]) == ("b1", "REPRODUCED", "2/2")
    assert (cand["run"], cand["verdict"], cand["rate"]) == ("c1", "NOT_REPRODUCED", "0/2")
    assert base["interval"] == wilson(2, 2).text() and cand["interval"] == wilson(0, 2).text()
    assert base["report_url"] == "/reports/quick-repro/b1/report.html"
    assert data["report_url"] == "/reports/quick-repro/v1/report.html"
    doc = page(client, "/verifications/v1")
    sides = doc.all("section", "side")
    assert [s.attrs["id"] for s in sides] == ["baseline", "candidate"]  # baseline on the left
    assert "/runs/b1" in sides[0].links() and "/runs/c1" in sides[1].links()
    assert "REPRODUCED" in sides[0].text() and "NOT_REPRODUCED" in sides[1].text()
    assert "2/2 before the fix" in doc.text()
    listed = api(client, "/api/verifications")["verifications"]
    assert [v["id"] for v in listed] == ["v1"] and listed[0]["candidate_rate"] == "0/2"
    assert "/verifications/v1" in page(client, "/verifications").links()


# -- matrices --------------------------------------------------------------------------------


def _cells(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["label"]: c for row in data["rows"] for c in row["cells"] if c}


def test_heatmap_latest_matrix_with_each_cells_history(client: TestClient) -> None:
    listed = api(client, "/api/matrices")["scenarios"]
    assert [(m["scenario"], m["latest"]["id"], m["matrices"]) for m in listed] == [
        ("matrix-small", "m3", 3)
    ]
    data = api(client, "/api/matrices/matrix-small")
    assert data["matrix"]["id"] == "m3" and [m["id"] for m in data["history"]] == ["m1", "m2", "m3"]
    assert data["row_axis"] == "nginx" and data["columns"] == [
        "page=index.html",
        "page=missing.html",
    ]
    assert [r["label"] for r in data["rows"]] == ["1.18", "1.22"]
    cells = _cells(data)
    assert data["rows"][1]["cells"][0]["label"] == "B"  # nginx=1.22, page=index.html
    assert [h["status"] for h in cells["B"]["history"]] == ["PASS", "FAIL", "FAIL"]
    assert [h["status"] for h in cells["D"]["history"]] == ["FAIL", None, "ERROR"]  # absent in m2
    assert [h["matrix"] for h in cells["D"]["history"]] == ["m1", "m2", "m3"]
    assert cells["B"]["url"] == "/runs/m3-B"  # the newest matrix's cells are indexed runs
    assert [h["url"] for h in cells["B"]["history"]] == [None, None, "/runs/m3-B"]
    doc = page(client, "/matrices/matrix-small")
    tds = doc.all("td", "heat")
    assert len(tds) == 4
    b = next(td for td in tds if td.attrs["title"].startswith("B:"))
    assert "v-fail" in b.classes
    marks = b.one(cls="history").all(cls="mark")
    assert [m.classes[1] for m in marks] == ["v-pass", "v-fail", "v-fail"]  # oldest first
    d = next(td for td in tds if td.attrs["title"].startswith("D:"))
    assert ["absent" in m.classes for m in d.one(cls="history").all(cls="mark")] == [
        False, True, False
    ]  # fmt: skip
    assert "/matrices/matrix-small" in page(client, "/matrices").links()


def test_heatmap_of_an_older_matrix(client: TestClient) -> None:
    data = api(client, "/api/matrices/matrix-small?matrix=m2")
    assert data["matrix"]["id"] == "m2" and [m["id"] for m in data["history"]] == ["m1", "m2"]
    assert data["rows"][1]["cells"][1] is None  # D was not in m2
    assert [h["status"] for h in _cells(data)["B"]["history"]] == ["PASS", "FAIL"]
    doc = page(client, "/matrices/matrix-small?matrix=m2")
    assert len(doc.all("td", "none")) == 1
    current = doc.one("ol", "history-list").one("a", "on")
    assert current.attrs["href"] == "/matrices/matrix-small?matrix=m2"


# -- gates, rates, escalations ---------------------------------------------------------------


def test_gates_per_release_with_regressions_highlighted(client: TestClient) -> None:
    data = api(client, "/api/gates")
    rels = {r["release"]: r for r in data["releases"]}
    assert [r["release"] for r in data["releases"]] == ["1.3", "1.2"]  # newest release first
    assert rels["1.3"]["regressed"] is True and rels["1.2"]["regressed"] is False
    assert [g["id"] for g in rels["1.3"]["runs"]] == ["g1", "g2"]
    g2 = rels["1.3"]["runs"][1]
    assert g2["regressions"] == [{"key": REGRESSED, "baseline": "PASS", "now": "FAIL"}]
    assert [c["key"] for c in g2["new"]] == ["matrix-small/nginx=1.22,page=missing.html"]
    row = next(k for k in rels["1.3"]["keys"] if k["key"] == REGRESSED)
    assert [(m["status"], m["regression"]) for m in row["marks"]] == [
        ("PASS", False), ("FAIL", True)
    ]  # fmt: skip
    assert row["marks"][1]["url"] == "/runs/m3-B"
    doc = page(client, "/gates")
    sections = doc.all("section", "release")
    assert ["regressed" in s.classes for s in sections] == [True, False]
    flagged = sections[0].all("tr", "regression")
    assert len(flagged) == 1 and flagged[0].one(cls="regressed-key").text().startswith(REGRESSED)
    marked = sections[0].all("td", "regression")
    assert len(marked) == 1 and "v-fail" in marked[0].classes
    assert not sections[1].all("tr", "regression") and not sections[1].all("td", "regression")


def _point(k: int, n: int, i: int) -> RatePoint:
    ci = wilson(k, n)
    return RatePoint(
        run=f"p{i}", started=None, role="reproduce", verdict=None, observed=k, attempts=n,
        rate=k / n, low=ci.low, high=ci.high, interval=ci.text(), url="/",
    )  # fmt: skip


def test_rates_per_scenario_with_wilson_intervals(client: TestClient) -> None:
    data = api(client, "/api/rates")
    by = {s["scenario"]: s for s in data["scenarios"]}
    assert set(by) == {"quick-repro", XSS}  # matrix cells (another version each) are not counted
    qr = by["quick-repro"]
    # oldest first; the candidate (a fix applied) and the ERROR run measured nothing of it
    assert [p["run"] for p in qr["points"]] == ["r1", "r2", "r3", "b1", "out1"]
    for p in qr["points"]:
        ci = wilson(p["observed"], p["attempts"])
        assert (p["low"], p["high"], p["interval"]) == (ci.low, ci.high, ci.text())
        assert p["rate"] == p["observed"] / p["attempts"]
    k, n = 2 + 0 + 3 + 2 + 2, 2 + 3 + 5 + 2 + 2
    ci = wilson(k, n)
    assert qr["pooled"] == {
        "runs": 5, "observed": k, "attempts": n, "rate": k / n, "low": ci.low, "high": ci.high,
        "interval": ci.text(),
    }  # fmt: skip
    doc = page(client, "/rates")
    sections = doc.all("section", "scenario-rate")
    section = next(x for x in sections if x.one("h2").text() == "quick-repro")
    assert ci.text() in section.one(cls="pooled").text()
    assert len(section.all("circle", "dot")) == 5 and len(section.all("line", "ci")) == 5
    only = api(client, "/api/rates?scenario=quick-repro")["scenarios"]
    assert [s["scenario"] for s in only] == ["quick-repro"]


def test_pooled_rate_takes_the_newest_twenty() -> None:
    points = [_point(0, 4, i) for i in range(5)] + [_point(3, 4, i) for i in range(20)]
    p = pooled(points)
    assert (p.runs, p.observed, p.attempts) == (20, 60, 80)
    assert (p.low, p.high) == (wilson(60, 80).low, wilson(60, 80).high)
    empty = pooled([])
    assert (empty.rate, empty.low, empty.high) == (None, 0.0, 1.0)


def test_escalations_per_ticket_what_was_attached_where(client: TestClient) -> None:
    data = api(client, "/api/escalations")
    tickets = {t["ticket"]: t["escalations"] for t in data["tickets"]}
    assert list(tickets) == ["SUP-1", "SUP-2"]
    assert [e["id"] for e in tickets["SUP-1"]] == ["e2", "e1"]  # newest first
    e1 = tickets["SUP-1"][1]
    assert e1["url"] == "/runs/r1" and tickets["SUP-1"][0]["url"] == "/verifications/v1"
    local, redmine = e1["trackers"]
    assert (local["tracker"], local["attached"]) == ("local", ["r1.tar.gz", "report.html"])
    assert redmine["already"] == ["r1.tar.gz"] and redmine["not_attached"] == ["captures/lan.pcap"]
    doc = page(client, "/escalations")
    assert "https://tracker.example/SUP-1" in doc.links()
    assert not [h for h in doc.links() if h.lower().startswith("javascript:")]
    assert "tracker down: 503" in doc.text()  # the jira error, shown, and its link not made
    assert "javascript:alert(1)" in doc.text()  # as text only
    only = api(client, "/api/escalations?ticket=SUP-2")["tickets"]
    assert [t["ticket"] for t in only] == ["SUP-2"]


# -- every page ------------------------------------------------------------------------------


def test_untrusted_text_is_escaped(client: TestClient) -> None:
    for url in ("/", "/runs/x1", "/rates", "/?scenario=" + XSS):
        r = client.get(url)
        assert r.status_code == 200
        assert XSS not in r.text and "<b>T-1</b>" not in r.text
        assert "&lt;script&gt;" in r.text
    assert not parse(client.get("/runs/x1").text).all("script")


def test_every_page_links_its_json_twin_and_fetches_nothing_elsewhere(
    client: TestClient, ix: Index
) -> None:
    urls = [*PAGES, "/runs/r1", "/verifications/v1", "/matrices/matrix-small"]
    for url in urls:
        r = client.get(url)
        doc = parse(r.text)
        twin = doc.one("a", "twin").attrs["href"]
        assert client.get(twin).status_code == 200 and twin.startswith("/api/")
        fetched = [n.attrs.get("src") or n.attrs.get("href", "") for n in doc.all("link")]
        fetched += [n.attrs["src"] for n in doc.all() if "src" in n.attrs]
        assert fetched and all(u.startswith("/") and not u.startswith("//") for u in fetched), url
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    css = client.get("/static/dashboard.css").text
    assert "url(" not in css and "@import" not in css
    assert client.get("/favicon.ico").status_code == 200


def test_read_only_and_openapi_offline(client: TestClient) -> None:
    spec = api(client, "/openapi.json")
    assert {m for ops in spec["paths"].values() for m in ops} == {"get"}
    assert set(spec["paths"]) == {
        "/api/runs", "/api/runs/{run_id}", "/api/verifications",
        "/api/verifications/{verification_id}", "/api/matrices", "/api/matrices/{scenario}",
        "/api/gates", "/api/rates", "/api/escalations", "/api/about",
    }  # fmt: skip
    for docs in ("/docs", "/redoc"):  # Swagger UI and ReDoc load from a CDN: not served
        assert client.get(docs).status_code == 404
    for method in ("post", "put", "delete", "patch"):
        for url in ("/api/runs", "/runs/r1", "/reports/quick-repro/r1/report.html"):
            assert client.request(method, url).status_code == 405
    about = api(client, "/api/about")
    assert about["counts"]["run"] == 12 and about["store"].startswith("sqlite:///")


def test_a_rebound_host_name_is_refused(ix: Index) -> None:
    store = Store.open(ix.url, readonly=True)
    try:
        app = create_app(store, ix.root, allowed_hosts=["127.0.0.1", "localhost"])
        with TestClient(app, base_url="http://127.0.0.1:8765") as c:
            assert c.get("/").status_code == 200
            assert c.get("/", headers={"host": "evil.example"}).status_code == 400
    finally:
        store.close()


def test_an_empty_index_says_how_to_fill_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    Store.open(url).close()
    store = Store.open(url, readonly=True)
    try:
        with TestClient(create_app(store, tmp_path)) as c:
            assert "lab index" in c.get("/").text
            for url_ in PAGES:
                assert c.get(url_).status_code == 200
                assert c.get("/api" + (url_ if url_ != "/" else "/runs")).status_code == 200
    finally:
        store.close()
