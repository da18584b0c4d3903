"""Every k/n the harness shows carries its 95% interval (Wilson): the journal, the reports and
the ticket comment (issue 15 point 3). Recorded journals older than schema 1.2 have none
recorded: the reports compute it from their k and n."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.reports.html import render_html
from harness.reports.journal import Run, load
from harness.reports.junit import write_junit
from tests.unit.reportkit import comment_of, journal, make_run

LOSSY = "3/6, 95% CI 19-81%"  # lossy-intermittent: 3 of 6 attempts


def _run(tmp_path: Path, data: dict[str, Any] | None = None) -> tuple[Run, Path]:
    folder = make_run(tmp_path, "lossy-intermittent", data)
    return Run(load(folder), folder), folder


def test_an_old_journal_gets_its_interval_computed(tmp_path: Path) -> None:
    run, _ = _run(tmp_path)
    assert run.rate == "3/6"
    assert run.rate_text == LOSSY


def test_a_recorded_interval_is_what_is_shown(tmp_path: Path) -> None:
    data = journal("lossy-intermittent")
    data["reproduction"]["interval"] = {
        "low": 0.2,
        "high": 0.8,
        "confidence": 0.9,
        "text": "90% CI 20-80%",
    }
    run, _ = _run(tmp_path, data)
    assert run.rate_text == "3/6, 90% CI 20-80%"


def test_junit_carries_the_interval(tmp_path: Path) -> None:
    run, folder = _run(tmp_path)
    root = ET.parse(write_junit(run, folder)).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["rate"] == "3/6"
    assert props["interval"] == "95% CI 19-81%"
    # the verdict test case's text (props hold "3/6" and the interval apart, never together)
    assert LOSSY in ET.tostring(root, encoding="unicode")


def test_the_html_headline_says_the_interval(tmp_path: Path) -> None:
    run, _ = _run(tmp_path)
    html = render_html(run)
    assert f"<h1>REPRODUCED ({LOSSY})</h1>" in html


def test_the_ticket_comment_says_the_interval() -> None:
    manifest = {
        "run": {
            "id": "r1",
            "scenario": "lossy",
            "verdict": "REPRODUCED",
            "rate": "3/6",
            "interval": "95% CI 19-81%",
            "reason": "symptom observed in 3 of 6",
        }
    }
    text = comment_of(manifest)
    assert f"Verdict: REPRODUCED ({LOSSY}) - symptom observed in 3 of 6" in text
    assert json.dumps(manifest)  # the manifest stays plain JSON


def test_reproduce_md_says_the_interval(tmp_path: Path) -> None:
    from harness import journal_model
    from harness.reports.manual import write_manual

    _, folder = _run(tmp_path)
    text = write_manual(journal_model.load(folder / "journal.json"), folder).read_text()
    assert f"gave **REPRODUCED** ({LOSSY}): " in text
