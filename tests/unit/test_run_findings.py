"""Findings in every run (issue 16 point 2): the `analyze` phase over a run folder (real
tshark on real captures, the project's lab signatures on logs), and every report built from a
journal carrying that phase: report.html's Findings section, JUnit properties, Allure's
findings.json, the bundle summary and the ticket comment's Findings line."""

from __future__ import annotations

import copy
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness import journal_model
from harness.escalation.bundle import _summary
from harness.reports import write_reports
from harness.reports.journal import Run, load
from harness.run.analyze import analyze_folder
from harness.run.redact import Redactor
from harness.scenario.catalog import load_catalog
from tests.unit.reportkit import comment_of, journal, make_run

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "analyze"
NGINX = (
    "2026/12/03 07:01:02 [error] 30#30: *9 client intended to send too large body: 2097152 "
    'bytes, client: 10.0.0.2, server: _, request: "POST /upload HTTP/1.1", host: "proxy"\n'
)


def finding(sig: str, sev: str, count: int, **kw: Any) -> dict[str, Any]:
    kind = "log" if sig.startswith("log:") else "capture"
    return {
        "signature": sig,
        "kind": kind,
        "severity": sev,
        "title": f"title of {sig}",
        "count": count,
        **kw,
    }


ANALYZE = {
    "phase": "analyze",
    "start": "2026-11-26T01:00:22.920+00:00",
    "end": "2026-11-26T01:00:23.400+00:00",
    "duration_s": 0.48,
    "result": "ok",
    "sources": [
        {
            "path": "captures/dmz.pcap",
            "kind": "capture",
            "network": "dmz",
            "units": 60,
            "findings": [
                finding(
                    "http.status:200",
                    "info",
                    4,
                    source="captures/dmz.pcap",
                    first_frame=30,
                    network="dmz",
                ),
                finding(
                    "tls.alert:protocol_version",
                    "error",
                    2,
                    source="captures/dmz.pcap",
                    first_frame=6,
                    network="dmz",
                    sample="Alert (Level: Fatal) <b>x</b>",
                ),
                finding(
                    "tcp.reset",
                    "warning",
                    3,
                    source="captures/dmz.pcap",
                    first_frame=8,
                    network="dmz",
                ),
            ],
        },
        {
            "path": "artifacts/proxy/files/var/log/nginx/error.log",
            "kind": "log",
            "node": "proxy",
            "labs": ["nginx"],
            "units": 12,
            "findings": [
                finding(
                    "log:nginx.body-too-large",
                    "warning",
                    1,
                    source="artifacts/proxy/files/var/log/nginx/error.log",
                    first_line=3,
                    node="proxy",
                    lab="nginx",
                    hint="raise client_max_body_size",
                ),
            ],
        },
        {
            "path": "captures/lan.pcap",
            "kind": "capture",
            "network": "lan",
            "error": "not a readable capture: tshark exited 2",
        },
    ],
}


def with_analyze(name: str = "tls-reproduce") -> dict[str, Any]:
    data = copy.deepcopy(journal(name))
    at = next(i for i, p in enumerate(data["phases"]) if p["phase"] == "collect")
    data["phases"].insert(at + 1, copy.deepcopy(ANALYZE))
    return data


def reports(tmp_path: Path, data: dict[str, Any]) -> Path:
    folder = make_run(tmp_path, str(data.get("run")), data)
    written = write_reports(folder)
    assert "errors" not in written, written
    return folder


# -- the journal ---------------------------------------------------------------------------


def test_the_analyze_phase_is_typed_and_the_run_lists_its_findings_worst_first() -> None:
    j = journal_model.parse(with_analyze())
    phase = j.phase("analyze")
    assert isinstance(phase, journal_model.AnalyzePhase) and phase.kind == "analyze"
    run = Run(j, Path("/nowhere"))
    assert [f.signature for f in run.findings()] == [
        "tls.alert:protocol_version",
        "tcp.reset",
        "log:nginx.body-too-large",
        "http.status:200",
    ]
    assert [f.where for f in run.findings()][:3] == [
        "captures/dmz.pcap frame 6",
        "captures/dmz.pcap frame 8",
        "artifacts/proxy/files/var/log/nginx/error.log:3",
    ]
    assert run.analyzed()[2].error == "not a readable capture: tshark exited 2"


def test_a_journal_from_a_newer_harness_keeps_its_extra_finding_keys() -> None:
    data = with_analyze()
    analyze = next(p for p in data["phases"] if p["phase"] == "analyze")
    analyze["sources"][0]["findings"][0]["confidence"] = 0.9
    j = journal_model.parse(data)
    assert isinstance(j.phase("analyze"), journal_model.AnalyzePhase)


# -- report.html ---------------------------------------------------------------------------


def test_report_html_has_findings_right_after_the_verdict(tmp_path: Path) -> None:
    html = (reports(tmp_path, with_analyze()) / "report.html").read_text()
    start, case = html.index('<h2 id="findings">Findings</h2>'), html.index("<h2>Case</h2>")
    assert html.index("</header>") < start < case
    section = html[start:case]
    # errors first, then warnings; each with signature, title, count, where, node/network, hint
    assert section.index("tls.alert:protocol_version") < section.index("tcp.reset")
    assert section.index("tcp.reset") < section.index("log:nginx.body-too-large")
    row = section[section.index('<tr class="finding error">') :].split("</tr>")[0]
    for cell in ("tls.alert:protocol_version", ">2<", "captures/dmz.pcap frame 6", ">dmz<"):
        assert cell in row, row
    assert '<span class="sev error">error</span>' in row
    assert "&lt;b&gt;x&lt;/b&gt;" in row and "<b>x</b>" not in section  # the sample, escaped
    nginx = section[section.index("log:nginx.body-too-large") :].split("</tr>")[0]
    assert "error.log:3" in nginx and ">proxy<" in nginx and "raise client_max_body_size" in nginx
    # info findings folded below the table
    folded = section[section.index('<details class="findings-info">') :]
    assert "1 informational finding(s)" in folded and "http.status:200" in folded
    assert section.index("http.status:200") > section.index("log:nginx.body-too-large")
    assert "captures/lan.pcap: not a readable capture: tshark exited 2" in section


def test_report_html_without_an_analyze_phase_has_no_findings_section(tmp_path: Path) -> None:
    html = (reports(tmp_path, journal("tls-reproduce")) / "report.html").read_text()
    assert 'id="findings"' not in html


def test_report_html_says_when_the_evidence_showed_nothing(tmp_path: Path) -> None:
    data = with_analyze()
    analyze = next(p for p in data["phases"] if p["phase"] == "analyze")
    analyze["sources"] = [{"path": "artifacts/proxy/container.log", "kind": "log", "units": 3}]
    html = (reports(tmp_path, data) / "report.html").read_text()
    assert "No error or warning found in the run's 1 capture(s) and log(s)." in html


# -- JUnit and Allure ----------------------------------------------------------------------


def test_junit_suites_carry_a_finding_property_per_signature(tmp_path: Path) -> None:
    root = ET.parse(reports(tmp_path, with_analyze()) / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert suites
    for suite in suites:
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["finding:tls.alert:protocol_version"] == "2"
        assert props["finding:tcp.reset"] == "3"
        assert props["finding:log:nginx.body-too-large"] == "1"
        assert props["finding:http.status:200"] == "4"
    plain = ET.parse(reports(tmp_path / "old", journal("tls-reproduce")) / "junit.xml")
    assert not [p for p in plain.getroot().iter("property") if "finding:" in p.get("name", "")]


def test_allure_attaches_findings_json_to_the_attempts_and_collect(tmp_path: Path) -> None:
    out = reports(tmp_path, with_analyze()) / "allure-results"
    results = [json.loads(p.read_text()) for p in out.glob("*-result.json")]
    with_it = {
        r["name"] for r in results for a in r.get("attachments", []) if a["name"] == "findings.json"
    }
    assert {"attempt-1", "attempt-2", "attempt-3", "collect"} <= with_it
    att = next(a for r in results for a in r.get("attachments", []) if a["name"] == "findings.json")
    assert att["type"] == "application/json"
    rows = json.loads((out / att["source"]).read_text())
    assert rows[0]["signature"] == "tls.alert:protocol_version"
    assert rows[0]["where"] == "captures/dmz.pcap frame 6"


# -- the bundle's summary and the ticket comment ---------------------------------------------


def test_bundle_summary_lists_error_and_warning_findings_in_a_fixed_order() -> None:
    j = journal_model.parse(with_analyze())
    got = _summary(j, {})["findings"]
    assert got == [
        {
            "signature": "tls.alert:protocol_version",
            "severity": "error",
            "count": 2,
            "where": "captures/dmz.pcap frame 6",
        },
        {
            "signature": "tcp.reset",
            "severity": "warning",
            "count": 3,
            "where": "captures/dmz.pcap frame 8",
        },
        {
            "signature": "log:nginx.body-too-large",
            "severity": "warning",
            "count": 1,
            "where": "artifacts/proxy/files/var/log/nginx/error.log:3",
        },
    ]
    # the same journal, its sources in another order: the same bytes
    data = with_analyze()
    next(p for p in data["phases"] if p["phase"] == "analyze")["sources"].reverse()
    again = _summary(journal_model.parse(data), {})["findings"]
    assert json.dumps(again) == json.dumps(got)
    assert _summary(journal_model.parse(journal("tls-reproduce")), {})["findings"] == []


def comment(run: dict[str, Any]) -> str:
    base = {"id": "r1", "scenario": "tls", "verdict": "REPRODUCED", "rate": "3/3"}
    return comment_of({"run": {**base, **run}})


def test_ticket_comment_has_a_findings_line() -> None:
    summary = _summary(journal_model.parse(with_analyze()), {})
    text = comment({"findings": summary["findings"]})
    line = next(ln for ln in text.splitlines() if ln.startswith("Findings: "))
    assert line == (
        "Findings: tls.alert:protocol_version x2 (captures/dmz.pcap frame 6); "
        "tcp.reset x3 (captures/dmz.pcap frame 8); "
        "log:nginx.body-too-large x1 (artifacts/proxy/files/var/log/nginx/error.log:3)"
    )
    assert text.index("Verdict: ") < text.index("Findings: ") < text.index("Case: ")
    assert "http.status:200" not in text  # info findings stay out of the comment
    assert "Findings" not in comment({})


def test_ticket_comment_names_ten_findings_and_counts_the_rest() -> None:
    many = [{"signature": f"s{i}", "count": 1, "where": "f:1"} for i in range(13)]
    line = next(ln for ln in comment({"findings": many}).splitlines() if ln.startswith("Find"))
    assert line.count(" x1 (f:1)") == 10 and line.endswith("; and 3 more")


# -- the phase over a real run folder --------------------------------------------------------


def run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "case" / "261203-070000-abcd"
    (run / "captures").mkdir(parents=True)
    shutil.copy(DATA / "evidence.pcap", run / "captures" / "dmz.pcap")
    shutil.copy(DATA / "truncated.pcap", run / "captures" / "lan.pcap")
    (run / "captures" / "bad.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\xff" * 40)
    nodes = [{"name": "proxy", "lab": "nginx"}]
    (run / "journal.json").write_text(json.dumps({"run": run.name, "topology": {"nodes": nodes}}))
    (run / "run.json").write_text("{}")
    logs = run / "artifacts" / "proxy" / "files" / "var" / "log" / "nginx"
    logs.mkdir(parents=True)
    (logs / "error.log").write_text("boot\n" + NGINX)
    return run


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_analyze_folder_reads_masked_captures_and_logs_relative_to_the_run(
    tmp_path: Path,
) -> None:
    run = run_folder(tmp_path)
    got = {s.path: s for s in analyze_folder(run, load_catalog(ROOT), Redactor())}
    assert set(got) == {
        "captures/bad.pcap",
        "captures/dmz.pcap",
        "captures/lan.pcap",
        "artifacts/proxy/files/var/log/nginx/error.log",
    }
    dmz = got["captures/dmz.pcap"]
    alert = next(f for f in dmz.findings if f.signature == "tls.alert:protocol_version")
    assert (alert.source, alert.first_frame, alert.network) == ("captures/dmz.pcap", 6, "dmz")
    lan = got["captures/lan.pcap"]  # cut short: partial, with a warning
    assert "cut short" in lan.warnings[0] and lan.findings and lan.error is None
    bad = got["captures/bad.pcap"]  # tshark refuses it: recorded, never raised
    assert bad.error and bad.error.startswith("not a readable capture") and not bad.findings
    log = got["artifacts/proxy/files/var/log/nginx/error.log"]
    (f,) = log.findings
    assert (f.signature, f.where, f.node) == (
        "log:nginx.body-too-large",
        "artifacts/proxy/files/var/log/nginx/error.log:2",
        "proxy",
    )
    masked = json.loads((run / "run.json").read_text())["masked_captures"]
    assert set(masked) == {"captures/bad.pcap", "captures/dmz.pcap", "captures/lan.pcap"}


def redactor(secret: str) -> Redactor:
    r = Redactor()
    r.add_values([secret])
    return r


def test_a_secret_in_a_capture_is_masked_before_it_is_read(tmp_path: Path) -> None:
    run = run_folder(tmp_path)
    for p in (run / "captures").glob("*.pcap"):
        p.unlink()
    secret = "hunter2-Very-Secret"
    (run / "captures" / "dmz.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + secret.encode() * 3)
    analyze_folder(run, load_catalog(ROOT), redactor(secret))
    assert secret.encode() not in (run / "captures" / "dmz.pcap").read_bytes()


def test_without_tshark_captures_say_why_and_logs_are_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.analysis.tshark.shutil.which", lambda _name: None)
    got = {s.path: s for s in analyze_folder(run_folder(tmp_path), load_catalog(ROOT), Redactor())}
    err = got["captures/dmz.pcap"].error or ""
    assert "tshark is not installed" in err and "apt-get install" in err
    assert got["artifacts/proxy/files/var/log/nginx/error.log"].findings


def test_lab_report_rebuilds_the_findings_from_journal_json_alone(tmp_path: Path) -> None:
    folder = reports(tmp_path, with_analyze())
    for name in ("report.html", "junit.xml"):
        (folder / name).unlink()
    shutil.rmtree(folder / "captures")  # the evidence is gone: the journal is enough
    write_reports(folder)
    assert "tls.alert:protocol_version" in (folder / "report.html").read_text()
    assert "finding:tls.alert:protocol_version" in (folder / "junit.xml").read_text()
    assert load(folder).phase("analyze") is not None


def test_a_verification_comment_says_whose_findings_they_are() -> None:
    found = [{"signature": "tcp.reset", "count": 2, "where": "captures/dmz.pcap frame 8"}]
    manifest = {
        "run": {"id": "b1", "scenario": "tls", "findings": found},
        "verification": {"id": "verify-1", "fix": "f", "verdict": "FIXED"},
    }
    assert "Findings of the baseline: tcp.reset x2 (captures/dmz.pcap frame 8)" in comment_of(
        manifest
    )


def test_a_stop_while_finishing_ends_the_reading_early(tmp_path: Path) -> None:
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # the signal comes while the first source is read

    got = analyze_folder(run_folder(tmp_path), load_catalog(ROOT), Redactor(), stop=stop)
    assert [s.path for s in got] == ["captures/bad.pcap"]
