"""The reports of real runs, rendered by the real tools: Allure's commandline (npm package
allure-commandline on the machine's Java) into a single-file report, and report.html opened
in headless Chromium (Debian's chromium and chromium-driver, driven by selenium).
scripts/setup.sh installs all three; these tests never skip."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.reports import write_reports
from tests.conftest import run_lab

CASE = "scenarios/cases/tls-protocol-mismatch.yaml"
ERROR = "tests/engine/scenarios/repro-error.yaml"
ALLURE_PREFIX = (
    Path(os.environ.get("LABHARNESS_TOOLS", Path.home() / ".cache" / "labharness")) / "allure"
)
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
)


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


def test_html_in_headless_chromium(tls_run: tuple[Path, dict[str, Any]]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    folder, journal = tls_run
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.get((folder / "report.html").resolve().as_uri())
        logs = driver.get_log("browser")
        assert [x for x in logs if x["level"] in ("SEVERE", "WARNING")] == [], logs
        # nothing was fetched: the page is one file
        entries = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert entries == []
        h1 = driver.find_element(By.CSS_SELECTOR, "header.verdict h1")
        assert h1.is_displayed() and h1.text == "REPRODUCED (3/3, 95% CI 44-100%)"
        first = driver.execute_script(
            "return document.body.firstElementChild.getBoundingClientRect().top"
        )
        assert first == 0  # the verdict is the first thing on the page
        for node in journal["topology"]["nodes"]:
            texts = driver.find_elements(
                By.CSS_SELECTOR, f"svg.topology g.node[data-node='{node['name']}'] text"
            )
            assert texts and texts[0].is_displayed() and texts[0].text == node["name"]
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "tlsv1 alert protocol version" not in body  # step output is folded away...
        assert "exit code 35 (expected 35)" in body  # ...the symptom evidence is not
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        (folder / "report.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.quit()
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
