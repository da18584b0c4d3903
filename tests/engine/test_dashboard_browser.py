"""`lab serve` in a real browser, over an index made by real runs: two reproductions, a
verify-fix, two small matrices, the gates of releases 1.3 and 1.4, one escalation, then `lab
index`; then the real server (`lab serve`, uvicorn) and Debian's chromium driven by Playwright
(no browser download) clicking through every page: the runs and a filter, a run and its report,
a verification side by side, the heatmap with its history, gates, rates, escalations, a JSON
twin. No console error or warning, no uncaught error, no request to anywhere but the server.
The screenshots are kept in test-artifacts/dashboard/ (README's heatmap picture is one)."""

from __future__ import annotations

import json
import re
import select
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from harness.confidence import wilson
from tests.conftest import LAB, ROOT, lab_env, run_lab
from tests.engine.test_reports_render import CHROME_FLAGS, chromium_bin

pytestmark = [pytest.mark.engine]

QUICK = "scenarios/examples/quick-repro.yaml"
SMALL = "tests/engine/matrices/matrix-small.yaml"  # 2 PASS, 2 FAIL, 3 SKIP (not built)
BOTH = "nginx=1.22,os=debian-12,page=missing.html"  # a FAIL cell in both matrices
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CONSOLE_BAD = ("error", "warning")


@dataclass
class Live:
    url: str
    reports: Path
    api: dict[str, Any] = field(default_factory=dict)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as r:
            return json.loads(r.read())


def _real_runs(reports: Path, env: dict[str, str]) -> None:
    """The index's content, made the way a team makes it (about 25 s on a warm engine)."""
    for _ in range(2):
        run_lab("reproduce", QUICK, "--destroy", "always", reports=reports, check=True, **env)
    run_lab(
        "verify-fix", QUICK, "--fix", "add-page", "--destroy", "always",
        reports=reports, check=True, **env,
    )  # fmt: skip
    # two matrices: two cells first, then the whole matrix (two more cells, three SKIP): the
    # heatmap shows each cell's history, with a mark for "not in that matrix"
    for only in (["--only", "nginx=1.22", "--only", "os=debian-12"], []):
        p = run_lab("matrix", SMALL, *only, "-j", "2", reports=reports, **env)
        assert p.returncode == 1, p.stderr  # the missing page's cell FAILs, as it must
    assert (
        run_lab("gate", "scenarios/gates/release-1.3.yaml", reports=reports, **env).returncode == 0
    )
    assert (
        run_lab("gate", "scenarios/gates/release-1.4.yaml", reports=reports, **env).returncode == 1
    )
    first = sorted(p.name for p in (reports / "quick-repro").iterdir() if p.name[0].isdigit())[0]
    run_lab(
        "escalate", first, "--ticket", "EXAMPLE-2", "--note", "dashboard test",
        reports=reports, check=True, **env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("dashboard")
    reports = tmp / "reports"
    reports.mkdir()
    env = {"LABHARNESS_ESCALATIONS": str(tmp / "escalations")}
    _real_runs(reports, env)
    store = f"sqlite:///{tmp / 'index.sqlite'}"  # its own store, rebuilt from the folders
    run_lab("index", "--store", store, reports=reports, check=True, **env)
    proc = subprocess.Popen(
        [*LAB, "serve", "--store", store, "--port", "0"],
        cwd=ROOT,
        env=lab_env(reports, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout is not None, "lab serve printed no URL"
        found = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
        assert found, "lab serve does not serve on 127.0.0.1"
        yield Live(url=found.group(0), reports=reports)
        proc.terminate()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@dataclass
class Watched:
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def _watch(page: Page, w: Watched) -> None:
    page.on(
        "console",
        lambda m: w.console.append(f"{m.type}: {m.text}") if m.type in CONSOLE_BAD else None,
    )
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.on("request", lambda r: w.requests.append(r.url))

    def route(r: Route) -> None:  # anything not for the dashboard itself is refused and noted
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            w.blocked.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _runs_and_a_run(page: Page, live: Live) -> None:
    page.goto(live.url)
    expect(page.locator("main h1")).to_have_text("Runs")
    runs = live.get("/api/runs")["runs"]
    expect(page.locator("tr.run")).to_have_count(len(runs))
    _shot(page, "runs")
    page.select_option("#f-scenario", "quick-repro")
    page.select_option("#f-verdict", "REPRODUCED")
    page.click("#f-apply")
    expect(page).to_have_url(re.compile(r"scenario=quick-repro&.*verdict=REPRODUCED"))
    wanted = [r for r in runs if r["scenario"] == "quick-repro" and r["verdict"] == "REPRODUCED"]
    assert len(wanted) == 3  # the two reproductions and the verification's baseline
    expect(page.locator("tr.run")).to_have_count(3)
    for verdict in page.locator("tr.run .verdict").all_inner_texts():
        assert verdict == "REPRODUCED"
    _shot(page, "runs-filtered")
    repro = next(r for r in reversed(wanted) if r["role"] == "reproduce")
    page.click(f"a.run-link:text-is('{repro['id']}')")
    expect(page.locator("main h1")).to_contain_text("quick-repro")
    expect(page.locator(".headline")).to_contain_text(f"REPRODUCED 2/2 {wilson(2, 2).text()}")
    expect(page.locator("ul.files")).to_contain_text("REPRODUCE.md")
    _shot(page, "run")
    page.click("a.report-link")  # the run's own report.html, served from its folder
    expect(page.locator("header.verdict h1")).to_have_text(re.compile(r"^REPRODUCED \(2/2"))
    _shot(page, "run-report")
    page.go_back()


def _verification(page: Page, live: Live) -> None:
    page.click("#nav-verifications")
    page.click("a.verification-link")
    page.wait_for_load_state("load")  # its stylesheet applied before the layout is measured
    expect(page.locator("main .headline").first).to_contain_text("FIXED")
    base = page.locator("section#baseline").bounding_box()
    cand = page.locator("section#candidate").bounding_box()
    assert base is not None and cand is not None
    assert base["x"] + base["width"] <= cand["x"] and abs(base["y"] - cand["y"]) < 2
    expect(page.locator("section#baseline")).to_contain_text("REPRODUCED 2/2")
    expect(page.locator("section#candidate")).to_contain_text("NOT_REPRODUCED 0/2")
    _shot(page, "verification")


def _heatmap(page: Page, live: Live) -> None:
    page.click("#nav-matrices")
    page.click("a.heatmap-link:text-is('matrix-small')")
    cells = page.locator("table.heatmap td.heat:not(.none)")
    expect(cells).to_have_count(7)  # 2 rows x 4 columns, one corner excluded
    expect(page.locator("table.heatmap td.none")).to_have_count(1)
    for status, n in (("pass", 2), ("fail", 2), ("skip", 3)):
        expect(page.locator(f"td.heat.v-{status}")).to_have_count(n)
    for td in cells.all():  # each cell's history across the two matrices, oldest first
        expect(td.locator(".history .mark")).to_have_count(2)
    both = page.locator(f"td.heat[title^='{BOTH}:']")
    expect(both.locator(".history .mark.v-fail")).to_have_count(2)
    expect(page.locator("td.heat .history .mark.absent")).to_have_count(5)  # not in the first
    _shot(page, "heatmap")
    data = live.get("/api/matrices/matrix-small")
    assert len(data["history"]) == 2 and data["history"][-1]["id"] == data["matrix"]["id"]
    page.click("a.twin")  # the page's JSON twin, as the browser shows it
    twin = json.loads(page.locator("body").inner_text())
    assert twin["matrix"]["id"] == data["matrix"]["id"]
    page.go_back()
    both.locator(".status a").click()  # the cell's run
    expect(page.locator("main h1")).to_contain_text("matrix-small")
    expect(page.locator("dl.summary")).to_contain_text(BOTH)


def _gates_rates_escalations(page: Page, live: Live) -> None:
    page.click("#nav-gates")
    expect(page.locator("section.release")).to_have_count(2)
    regressed = page.locator("section.release.regressed")
    expect(regressed).to_have_count(1)
    expect(regressed.locator("h2")).to_contain_text("release 1.4")
    expect(regressed.locator(".regressed-key")).to_contain_text(
        "sample-product-redis[os=debian-11]"
    )
    expect(regressed.locator("td.gm.regression")).to_have_count(1)
    _shot(page, "gates")
    page.click("#nav-rates")
    points = live.get("/api/rates?scenario=quick-repro")["scenarios"][0]["points"]
    assert [p["role"] for p in points] == ["reproduce", "reproduce", "baseline"]
    k, n = sum(p["observed"] for p in points), sum(p["attempts"] for p in points)
    section = page.locator("section.scenario-rate", has=page.locator("h2", has_text="quick-repro"))
    expect(section.locator("circle.dot")).to_have_count(3)
    expect(section.locator(".pooled")).to_contain_text(f"{k}/{n}")
    expect(section.locator(".pooled")).to_contain_text(wilson(k, n).text())
    _shot(page, "rates")
    page.click("#nav-escalations")
    ticket = page.locator("section.ticket", has=page.locator("h2", has_text="EXAMPLE-2"))
    expect(ticket.locator("table.trackers td").first).to_have_text("local")
    expect(ticket.locator("table.trackers")).to_contain_text("REPRODUCE.md")
    _shot(page, "escalations")


@pytest.mark.skipif(
    chromium_bin() is None, reason="no chromium on this machine (scripts/setup.sh installs it)"
)
def test_dashboard_in_a_real_browser(live: Live) -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    w = Watched()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_bin(), args=list(CHROME_FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            _watch(page, w)
            try:
                _runs_and_a_run(page, live)
                _verification(page, live)
                _heatmap(page, live)
                _gates_rates_escalations(page, live)
            except BaseException:
                _shot(page, "failed-here")  # what the browser showed when a check failed
                raise
        finally:
            browser.close()
    assert w.console == [] and w.errors == [], (w.console, w.errors)
    assert w.blocked == [], w.blocked  # nothing fetched from anywhere else: no CDN, no font
    assert w.requests and all(urlsplit(u).hostname == "127.0.0.1" for u in w.requests)
