"""The reports of real runs, rendered by the real tools: Allure's commandline (npm package
allure-commandline on the machine's Java) into a single-file report, and report.html opened
in headless Chromium (Debian's chromium, driven by Playwright for Python).
scripts/setup.sh installs all three; the Chromium test skips only on a machine with no
chromium, and says so."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from harness.reports import write_reports
from tests.conftest import run_lab

CASE = "scenarios/cases/tls-protocol-mismatch.yaml"
ERROR = "tests/engine/scenarios/repro-error.yaml"
ALLURE_PREFIX = (
    Path(os.environ.get("LABHARNESS_TOOLS", Path.home() / ".cache" / "labharness")) / "allure"
)
# What Chromium needs on a closed network (no background fetches, no QUIC, no sync); Playwright
# adds --headless and a fresh temporary --user-data-dir of its own.
CHROME_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
CONSOLE_BAD = ("error", "warning")  # what selenium read as SEVERE and WARNING


def reproduce(scenario: str, reports: Path) -> tuple[Path, dict[str, Any]]:
    p = run_lab("reproduce", scenario, "--destroy", "always", "--json", reports=reports)
    out = json.loads(p.stdout)
    folder = Path(out["folder"])
    written = write_reports(folder)  # what `lab report RUN` and the end of a run call
    assert "errors" not in written, written
    return folder, json.loads((folder / "journal.json").read_text())


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def tls_run(reports_dir: Path) -> tuple[Path, dict[str, Any]]:
    return reproduce(CASE, reports_dir)


def allure_bin() -> str:
    env = os.environ.get("LABHARNESS_ALLURE")
    if env:
        return env
    local = ALLURE_PREFIX / "node_modules" / ".bin" / "allure"
    if not local.exists():
        subprocess.run(
            ["npm", "install", "--prefix", str(ALLURE_PREFIX), "allure-commandline@2"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return str(local)


def allure_data(index: Path) -> dict[str, Any]:
    """The files a single-file Allure report embeds (`d('path','base64')`), decoded."""
    html = index.read_text()
    out: dict[str, Any] = {}
    for path, b64 in re.findall(r"d\('([^']+)','([^']*)'\)", html):
        raw = base64.b64decode(b64)
        out[path] = json.loads(raw) if path.endswith(".json") else raw
    return out


def attachment_names(stage: Any) -> set[str]:
    names = {a["name"] for a in stage.get("attachments", [])}
    for step in stage.get("steps", []):
        names |= attachment_names(step)
    return names


def generate(folder: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            allure_bin(),
            "generate",
            str(folder / "allure-results"),
            "-o",
            str(out),
            "--clean",
            "--single-file",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    return allure_data(out / "index.html")


def test_allure_single_file_report(tls_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, journal = tls_run
    data = generate(folder, tmp_path / "allure")
    cases = {c["name"]: c for p, c in data.items() if p.startswith("data/test-cases/")}
    checks = [c["name"].rsplit("::", 1)[-1] for c in journal["checks"]]
    assert len(checks) > 3  # command checks and the labs' pytest suites
    assert set(cases) == {
        "setup",
        "configure",
        "attempt-1",
        "attempt-2",
        "attempt-3",
        "collect",
        *checks,
    }
    a1 = cases["attempt-1"]
    assert a1["status"] == "passed"
    labels = {(x["name"], x["value"]) for x in a1["labels"]}
    assert {
        ("epic", "tls-protocol-mismatch"),
        ("feature", "nginx"),
        ("story", "attempt-1"),
        ("severity", "critical"),
    } <= labels
    names = attachment_names(a1["testStage"])
    assert {
        "topology.svg",
        "REPRODUCE.md",
        "capture dmz.pcap",
        "proxy: container.log",
        "output",
        "evidence",
    } <= names
    collect = attachment_names(cases["collect"]["testStage"])
    assert "proxy: inspect.json" in collect and "capture dmz.pcap" in collect
    assert any(p.startswith("data/attachments/") and p.endswith(".pcap") for p in data)
    env = {e["name"]: e["values"][0] for e in data["widgets/environment.json"]}
    assert env["engine"] == journal["engine"] and env["harness"] == journal["harness"]
    assert env["os.proxy"] == "debian-12" and env["image.proxy"].startswith("labharness/")


def test_allure_separates_infrastructure_errors(reports_dir: Path, tmp_path: Path) -> None:
    folder, journal = reproduce(ERROR, reports_dir)
    assert journal["reproduction"]["verdict"] == "ERROR"
    data = generate(folder, tmp_path / "allure")
    cats = {c["name"]: c for c in data["widgets/categories.json"]["items"]}
    assert set(cats) == {"Infrastructure errors"}
    assert "Product failures" not in cats


def chromium_bin() -> str | None:
    """Debian's chromium, which scripts/setup.sh installs (Playwright's own browsers are never
    downloaded: this machine's network is closed)."""
    found = shutil.which("chromium")
    return found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)


@dataclass
class PageLog:
    """What the page said and asked for while it loaded: read after the checks."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def watch(page: Page, log: PageLog) -> None:
    """Record console warnings/errors, uncaught errors and every request; abort any request
    that is not file://, so a report that reached out fails here instead of hanging."""
    page.on(
        "console",
        lambda m: log.console.append(f"{m.type}: {m.text}") if m.type in CONSOLE_BAD else None,
    )
    page.on("pageerror", lambda e: log.errors.append(str(e)))
    page.on("request", lambda r: log.requests.append(r.url))

    def route(r: Route) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)


@pytest.mark.skipif(
    chromium_bin() is None, reason="no chromium on this machine (scripts/setup.sh installs it)"
)
def test_html_in_headless_chromium(tls_run: tuple[Path, dict[str, Any]]) -> None:
    folder, journal = tls_run
    url = (folder / "report.html").resolve().as_uri()
    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_bin(), args=list(CHROME_FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            watch(page, log)
            page.goto(url)
            h1 = page.locator("header.verdict h1")
            expect(h1).to_be_visible()
            expect(h1).to_have_text("REPRODUCED (3/3, 95% CI 44-100%)")
            # the verdict is the first thing on the page, at its very top
            first = "document.body.firstElementChild"
            assert page.evaluate(f"{first}.matches('header.verdict')") is True
            assert page.evaluate(f"{first}.getBoundingClientRect().top") == 0
            expect(page.locator("svg.topology")).to_be_visible()
            names = [n["name"] for n in journal["topology"]["nodes"]]
            assert names
            expect(page.locator("svg.topology g.node")).to_have_count(len(names))
            for name in names:
                text = page.locator(f"svg.topology g.node[data-node='{name}'] text").first
                expect(text).to_be_visible()
                expect(text).to_have_text(name)
            body = page.locator("body")
            # step output is folded away (in the page, not shown)...
            step_out = page.locator("section.attempt details pre", has_text="alert protocol").first
            expect(step_out).to_contain_text("tlsv1 alert protocol version")
            expect(step_out).not_to_be_visible()
            # ...the Findings section, right after the verdict, quotes the line it matched
            findings = page.locator("table.findings").first
            expect(findings).to_be_visible()
            expect(findings).to_contain_text("tls.alert:protocol_version")
            # ...the symptom evidence is not
            expect(body).to_contain_text("exit code 35 (expected 35)", use_inner_text=True)
            # nothing was fetched: the page is one file
            assert page.evaluate("performance.getEntriesByType('resource').map(e => e.name)") == []
            page.screenshot(path=folder / "report.png", full_page=True)
        finally:
            browser.close()
    assert log.console == [] and log.errors == [], log
    assert log.blocked == [] and log.requests == [url], log
    png = (folder / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_lab_report_regenerates_what_a_real_run_wrote(tmp_path: Path) -> None:
    """A fresh run's own reports (REPRODUCE.md included, written from its journal at the end
    of the run) deleted, then `lab report RUN`: every file back, byte for byte; the journal
    fits the published schema and carries the plan REPRODUCE.md was made from."""
    import jsonschema

    reports = tmp_path / "reports"
    p = run_lab("reproduce", CASE, "--destroy", "always", "--json", reports=reports)
    folder = Path(json.loads(p.stdout)["folder"])
    journal = json.loads((folder / "journal.json").read_text())
    schema = json.loads((Path(__file__).parents[2] / "schemas/journal.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(journal)) == []
    assert journal["plan"]["steps"] and journal["plan"]["images"]
    names = ("junit.xml", "allure-results", "report.html", "REPRODUCE.md", "topology.svg")

    def snapshot() -> dict[str, bytes]:
        return {
            str(f.relative_to(folder)): f.read_bytes()
            for name in names
            for f in ([folder / name] if (folder / name).is_file() else (folder / name).rglob("*"))
            if f.is_file()
        }

    before = snapshot()
    assert (
        "REPRODUCE.md" in before
        and 'docker network create "$PREFIX-' in before["REPRODUCE.md"].decode()
    )
    for name in names:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    q = run_lab("report", journal["run"], reports=reports)
    assert q.returncode == 0, q.stderr
    assert snapshot() == before


@pytest.mark.skipif(
    chromium_bin() is None, reason="no chromium on this machine (scripts/setup.sh installs it)"
)
def test_verification_html_in_headless_chromium(reports_dir: Path) -> None:
    """A real verify-fix's report.html as a person sees it: the fix verdict at the top, the two
    sides really side by side (same row, baseline on the left), the diff's added line shown, one
    file with nothing fetched, and the link to a side's own report opens it."""
    p = run_lab(
        "verify-fix",
        "scenarios/cases/nginx-sha1-certificate.yaml",
        "--fix",
        "reissue-sha256",
        "--destroy",
        "always",
        "--json",
        reports=reports_dir,
    )
    out = json.loads(p.stdout)
    assert out["verdict"] == "FIXED", out["reason"]
    page_file = Path(out["verification_folder"]) / "report.html"
    url = page_file.resolve().as_uri()
    log = PageLog()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_bin(), args=list(CHROME_FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            watch(page, log)
            page.goto(url)
            expect(page.locator("header.verdict h1")).to_have_text("FIXED")
            assert page.evaluate("document.body.firstElementChild.matches('header.verdict')")
            base = page.locator("section#baseline").bounding_box()
            cand = page.locator("section#candidate").bounding_box()
            assert base is not None and cand is not None
            assert base["x"] + base["width"] <= cand["x"] and abs(base["y"] - cand["y"]) < 2
            expect(page.locator("section#baseline")).to_contain_text(out["baseline"]["rate"])
            expect(page.locator("section#candidate")).to_contain_text(out["candidate"]["rate"])
            expect(page.locator("div.diff")).to_contain_text("server-sha256.crt")
            assert page.evaluate("performance.getEntriesByType('resource').length") == 0
            page.locator("section#candidate a", has_text="its report").click()
            expect(page.locator("header.verdict h1")).to_contain_text("NOT_REPRODUCED")
            expect(page.locator("p.verification")).to_contain_text(out["verification"])
        finally:
            browser.close()
    assert log.console == [] and log.errors == [], log
    assert log.blocked == [], log
