"""The reports of a verification (harness/reports/verification.py), from a synthetic verification
folder beside two run journals captured from a real verify-fix (tls-baseline, tls-candidate):
the page shows the verdict before the sides, both rates with their intervals, the diff's lines,
and escapes scenario text; junit.xml has a suite per side plus `verification`, whose `verdict`
case fails unless FIXED, and fits the Jenkins XSD; the Allure result is passed only when FIXED;
a missing run journal still renders; `lab report VERIFICATION` rewrites them."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml

from harness import outcomes
from harness import verification_model as vm
from harness.reports.verification import write_verification_reports
from harness.verbs.report import report
from tests.unit.reportkit import make_run
from tests.unit.test_reports_allure import STATUSES, check_step_shape
from tests.unit.test_reports_html import EVIL, assert_self_contained
from tests.unit.test_reports_junit import xsd_errors

VID = "verify-261126-010047-c0de"
DIFF = """--- baseline
+++ candidate (enable-tls13)
@@ -10,3 +10,3 @@
   vars:
-    protocols: TLSv1.2
+    protocols: TLSv1.2 TLSv1.3
"""


def _side(role: str, run: str, observed: int, fix: str | None = None) -> dict[str, Any]:
    return {
        "role": role,
        "run": run,
        "folder": f"../{run}",
        "fix": fix,
        "verdict": outcomes.REPRODUCED if observed else outcomes.NOT_REPRODUCED,
        "observed": observed,
        "attempts": 3,
        "planned": 3,
        "rate": f"{observed}/3",
        "interval": {
            "low": 0.4385 if observed else 0.0,
            "high": 1.0 if observed else 0.5615,
            "confidence": 0.95,
            "text": "95% CI 44-100%" if observed else "95% CI 0-56%",
        },
        "reason": f"symptom observed in {observed} of 3",
        "checks": [
            {
                "name": "client$ curl -fsS https://proxy/",
                "passed": not observed,
                "exit_code": 35 if observed else 0,
                "expected": 0,
            },
        ],
        "checks_green": not observed,
    }


def make_verification(
    tmp: Path, verdict: str = outcomes.FIXED, title: str = "TLS", diff: str = DIFF
) -> Path:
    base = make_run(tmp, "tls-baseline")
    cand = make_run(tmp, "tls-candidate")
    (base / "report.html").write_text("run page")
    folder = base.parent / VID
    folder.mkdir()
    doc = vm.Verification.model_validate(
        {
            "id": VID,
            "scenario": "tls-protocol-mismatch",
            "title": title,
            "case": {"ticket": "SUP-48213", "customer": "acme"},
            "started": "2026-11-26T01:00:47+00:00",
            "ended": "2026-11-26T01:00:55+00:00",
            "verdict": verdict,
            "reason": "baseline 3/3, candidate 0/3, checks green",
            "why": ["attempt 1: probe request exit_code=35"],
            "exit_code": outcomes.exit_code("verify-fix", verdict),
            "overlay": {
                "fix": "enable-tls13",
                "kind": "fix",
                "description": f"TLS 1.3 on the proxy {title}",
                "definition": "kind: fix\nconfigure: []\n",
                "diff": diff,
                "changed": ["configure"],
            },
            "baseline": _side("baseline", base.name, 3),
            "candidate": _side("candidate", cand.name, 0, "enable-tls13"),
        }
    )
    (folder / vm.FILE).write_text(doc.model_dump_json(indent=2))
    return folder


def test_the_page_has_the_verdict_first_then_both_sides_and_the_diff(tmp_path: Path) -> None:
    folder = make_verification(tmp_path)
    done = write_verification_reports(folder)
    assert done.errors == [] and done.html and done.junit and done.allure
    html = (folder / "report.html").read_text()
    assert_self_contained(html)
    verdict = html.index("<h1>FIXED</h1>")
    baseline, candidate = html.index('id="baseline"'), html.index('id="candidate"')
    assert verdict < baseline < candidate < html.index('class="diff"')
    assert 'class="verdict good"' in html
    assert "baseline 3/3, candidate 0/3, checks green" in html[:baseline]
    assert "SUP-48213" in html and "enable-tls13" in html[:baseline]
    assert "3/3, 95% CI 44-100%" in html[baseline:candidate]
    assert "0/3, 95% CI 0-56%" in html[candidate:]
    # each side's attempts from its own journal, with the probes' evidence
    assert html[baseline:candidate].count("attempt-") == 3
    assert "symptom observed" in html[baseline:candidate]
    assert "symptom absent" in html[candidate : html.index('class="diff"')]
    assert "[held]" in html[baseline:candidate]
    assert '<span class="del">-    protocols: TLSv1.2</span>' in html
    assert '<span class="add">+    protocols: TLSv1.2 TLSv1.3</span>' in html
    assert 'href="../261126-010047-4a7d/report.html"' in html  # relative: the folder can move
    assert "exit 35" in html[baseline:candidate]


@pytest.mark.parametrize("verdict", [outcomes.NOT_FIXED, outcomes.REGRESSION])
def test_a_fix_that_did_not_work_is_red(tmp_path: Path, verdict: str) -> None:
    folder = make_verification(tmp_path, verdict)
    write_verification_reports(folder)
    html = (folder / "report.html").read_text()
    assert f"<h1>{verdict}</h1>" in html and 'class="verdict bad"' in html


def test_scenario_text_is_escaped(tmp_path: Path) -> None:
    folder = make_verification(tmp_path, title=EVIL, diff=DIFF + f"+    note: {EVIL}\n")
    assert write_verification_reports(folder).errors == []
    html = (folder / "report.html").read_text()
    assert "<script>" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") >= 3  # the title, the description, the diff line
    assert '<span class="add">+    note: &lt;script&gt;' in html
    assert_self_contained(html)


def _suites(folder: Path) -> dict[str, Any]:
    xml = JUnitXml.fromfile(str(folder / "junit.xml"))
    return {s.name: s for s in xml}


@pytest.mark.parametrize(
    ("verdict", "bad"),
    [
        (outcomes.FIXED, None),
        (outcomes.NOT_FIXED, Failure),
        (outcomes.REGRESSION, Failure),
        (outcomes.INCONCLUSIVE, Failure),
        (outcomes.ERROR, Error),
    ],
)
def test_junit_has_both_sides_and_the_verdict(
    tmp_path: Path, verdict: str, bad: type | None
) -> None:
    folder = make_verification(tmp_path, verdict)
    write_verification_reports(folder)
    assert xsd_errors(ET.parse(folder / "junit.xml").getroot()) == []
    suites = _suites(folder)
    assert list(suites) == ["baseline", "candidate", "verification"]
    cases = list(suites["verification"])
    assert [c.name for c in cases] == ["verdict"]
    result = cases[0].result
    if bad is None:
        assert result == []
    else:
        assert len(result) == 1 and isinstance(result[0], bad)
        assert result[0].message.startswith(f"{verdict} - baseline 3/3")
    names = [c.name for c in suites["baseline"]]
    assert names[:3] == ["attempt-1: symptom", "attempt-2: symptom", "attempt-3: symptom"]
    assert names[3] == "check: client$ curl -fsS https://proxy/"
    assert all(c.is_passed for c in list(suites["candidate"]))


@pytest.mark.parametrize("verdict", [outcomes.FIXED, outcomes.NOT_FIXED, outcomes.ERROR])
def test_allure_result_is_passed_only_when_fixed(tmp_path: Path, verdict: str) -> None:
    folder = make_verification(tmp_path, verdict)
    write_verification_reports(folder)
    out = folder / "allure-results"
    found = [json.loads(f.read_text()) for f in out.glob("*-result.json")]
    assert len(found) == 1
    r = found[0]
    assert set(r) >= {"uuid", "historyId", "fullName", "name", "status", "labels", "stage"}
    assert out.joinpath(f"{r['uuid']}-result.json").is_file()
    assert isinstance(r["start"], int) and isinstance(r["stop"], int) and r["start"] <= r["stop"]
    assert r["status"] in STATUSES and r["stage"] == "finished"
    assert r["status"] == {"FIXED": "passed", "NOT_FIXED": "failed", "ERROR": "broken"}[verdict]
    check_step_shape(r, out)
    params = {p["name"]: p["value"] for p in r["parameters"]}
    assert params["baseline rate"] == "3/3, 95% CI 44-100%"
    assert params["candidate rate"] == "0/3, 95% CI 0-56%"
    names = {a["name"] for a in r["attachments"]}
    assert {"scenario diff", "report.html", "verification.json"} <= names
    diff = next(a for a in r["attachments"] if a["name"] == "scenario diff")
    assert (out / diff["source"]).read_text() == DIFF
    assert [s["name"].split(":")[0] for s in r["steps"]] == ["baseline", "candidate"]
    assert (out / "environment.properties").read_text().startswith(f"verification={VID}")
    assert json.loads((out / "categories.json").read_text())


def test_a_missing_run_journal_still_renders(tmp_path: Path) -> None:
    folder = make_verification(tmp_path)
    shutil.rmtree(folder.parent / "261126-010050-b505")
    done = write_verification_reports(folder)
    assert done.errors == [], done.errors
    html = (folder / "report.html").read_text()
    assert "run folder missing: ../261126-010050-b505" in html
    assert "0/3, 95% CI 0-56%" in html  # the rate comes from verification.json
    cand = list(_suites(folder)["candidate"])
    assert cand[0].name == "run" and isinstance(cand[0].result[0], Error)
    assert "run folder missing" in cand[0].result[0].message


def test_no_verification_json_is_an_error_not_a_raise(tmp_path: Path) -> None:
    done = write_verification_reports(tmp_path)
    assert done.html is None and done.errors and "verification" in done.errors[0]


def test_lab_report_rewrites_a_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_verification(tmp_path)
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path))
    result = report(VID[:-2], root=tmp_path)
    assert result.folder == str(folder) and result.errors is None
    assert set(result.reports) == {"html", "junit", "allure"}
    assert re.search(r"<h1>FIXED</h1>", (folder / "report.html").read_text())
    assert report(str(folder), root=tmp_path).run == VID


def test_a_report_that_fails_is_recorded_and_the_others_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.reports.verification as vr

    def broken(_view: object) -> Path:
        raise OSError("disk full")

    folder = make_verification(tmp_path)
    monkeypatch.setattr(vr, "write_junit", broken)
    done = write_verification_reports(folder)
    assert done.errors == ["junit: OSError: disk full"]
    assert done.junit is None and done.html and done.allure
    assert (folder / vm.FILE).is_file() and not (folder / "junit.xml").exists()
