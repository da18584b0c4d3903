"""report.html and topology.svg: verdict first, content, escaping, self-containedness;
partial journals (interrupted runs) never make a report raise; `report(RUN)` finds runs."""

from __future__ import annotations

import copy
import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.reports import write_reports
from harness.verbs.report import report
from tests.unit.reportkit import journal, make_run

EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def html_of(tmp_path: Path, name: str, data: dict | None = None) -> tuple[Path, str]:  # type: ignore[type-arg]
    folder = make_run(tmp_path, name, data)
    written = write_reports(folder)
    assert "errors" not in written, written
    return folder, (folder / "report.html").read_text()


def assert_self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"<script", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"<(iframe|object|embed)\b", html, re.I)


@pytest.mark.parametrize(
    "name", ["tls-reproduce", "lossy-intermittent", "repro-error", "tls-ansible", "cache-partition"]
)
def test_content_and_self_contained(tmp_path: Path, name: str) -> None:
    data = journal(name)
    _, html = html_of(tmp_path, name)
    assert_self_contained(html)
    verdict = data["reproduction"]["verdict"]
    # the verdict comes first: before any other section
    assert html.index(f"<h1>{verdict}") < html.index("<h2>Case</h2>") < html.index("Topology")
    for node in data["topology"]["nodes"]:
        assert f">{node['name']}</text>" in html  # in the picture
    for phase in data["phases"]:
        assert phase["phase"] in html
    ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])  # well-formed SVG


def test_steps_evidence_and_links(tmp_path: Path) -> None:
    folder, html = html_of(tmp_path, "tls-reproduce")
    assert "tlsv1 alert protocol version" in html
    assert "exit code 35 (expected 35)" in html
    assert "SUP-48213" in html and "acme" in html
    assert "10.213.39.3" in html  # addresses from the up phase
    for rel in re.findall(r'href="([^"]+)"', html):
        assert not rel.startswith(("/", "file:")), rel
        if rel not in ("allure-results/",):
            assert (folder / rel).exists(), rel
    assert 'href="captures/dmz.pcap"' in html
    assert 'href="artifacts/proxy/files/etc/nginx/sites-available/default"' in html


def test_impairments_in_the_picture(tmp_path: Path) -> None:
    folder, _html = html_of(tmp_path, "lossy-intermittent")
    svg = (folder / "topology.svg").read_text()
    assert "loss 10%" in svg and "stroke-dasharray" in svg
    root = ET.fromstring(svg.split("?>", 1)[1])
    assert root.tag.endswith("svg")


def test_multi_network_picture(tmp_path: Path) -> None:
    folder, _ = html_of(tmp_path, "cache-partition")
    svg = (folder / "topology.svg").read_text()
    for net in ("front", "back", "data"):
        assert f'data-network="{net}"' in svg
    assert svg.count('class="link"') == 6  # client 1, proxy 2, backend 2, cache 1


def test_everything_is_escaped(tmp_path: Path) -> None:
    data = journal("tls-reproduce")
    data["title"] = EVIL
    data["case"]["customer"] = EVIL
    data["topology"]["nodes"][0]["name"] = EVIL
    a1 = next(p for p in data["phases"] if p["phase"] == "attempt-1")
    a1["steps"][1]["stdout"] = EVIL
    a1["symptom"]["children"][0]["evidence"].append(EVIL)
    data["checks"][0]["name"] = EVIL
    folder, html = html_of(tmp_path, "evil", data)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert_self_contained(html)
    svg = (folder / "topology.svg").read_text()
    assert "<script" not in svg
    ET.fromstring(svg.split("?>", 1)[1])


def test_fast(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "lossy-intermittent")
    start = time.perf_counter()
    write_reports(folder)
    assert time.perf_counter() - start < 1.0


def _cut(data: dict, n: int) -> dict:  # type: ignore[type-arg]
    """The journal as a run killed during its n-th phase left it."""
    d = copy.deepcopy(data)
    for key in ("ended", "result", "reproduction", "checks", "kept"):
        d.pop(key, None)
    d["phases"] = d["phases"][: n + 1]
    last = d["phases"][-1]
    for key in ("end", "duration_s", "observed", "symptom"):
        last.pop(key, None)
    if last.get("steps"):
        last["steps"][-1].pop("end", None)
    return d


@pytest.mark.parametrize("name", ["tls-reproduce", "tls-ansible", "repro-error"])
def test_partial_journals_never_raise(tmp_path: Path, name: str) -> None:
    data = journal(name)
    for n in range(len(data["phases"])):
        folder = make_run(tmp_path / str(n), name, _cut(data, n))
        written = write_reports(folder)
        assert "errors" not in written, (n, written)
        assert set(written) == {"manual", "topology", "junit", "allure", "html"}
        html = (folder / "report.html").read_text()
        assert "INCOMPLETE" in html and "incomplete" in html
        ET.parse(folder / "junit.xml")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"journal_version": 1},
        {"phases": "oops", "topology": [], "case": None},
        {"phases": [{"phase": "attempt-1"}, "junk", {"phase": "verify", "checks": ["x"]}]},
    ],
)
def test_odd_journals_never_raise(tmp_path: Path, data: dict) -> None:  # type: ignore[type-arg]
    folder = tmp_path / "s" / "r"
    folder.mkdir(parents=True)
    (folder / "journal.json").write_text(json.dumps(data))
    written = write_reports(folder)
    assert "errors" not in written, written


def test_missing_journal(tmp_path: Path) -> None:
    written = write_reports(tmp_path)
    assert "errors" not in written and (tmp_path / "report.html").is_file()


def test_report_verb_finds_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_run(tmp_path, "tls-reproduce")
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path))
    run_id = journal("tls-reproduce")["run"]
    for wanted in (str(folder), run_id, run_id[:10], str(folder / "journal.json")):
        out = report(wanted)
        assert Path(out.folder) == folder and out.errors is None
        assert set(out.reports) == {"manual", "topology", "junit", "allure", "html"}
    with pytest.raises(UsageError):
        report("nope")
    make_run(tmp_path, "tls-baseline")
    with pytest.raises(UsageError, match="ambiguous"):
        report(run_id[:4])


@pytest.mark.parametrize("backend", ["netem", "nfqueue"])
def test_a_delay_says_which_backend_made_it(tmp_path: Path, backend: str) -> None:
    """The probe picks the backend per engine: the report says which one the run used."""
    data = journal("lossy-intermittent")
    data["topology"]["impairments"] = [
        {"node": "client", "network": "dmz", "delay": "150ms"},
        {"node": "proxy", "network": "dmz", "loss": "5%"},
    ]
    for p in data["phases"]:
        if p["phase"] == "impair":
            p["applied"] = [{"node": "client", "network": "dmz", "backend": backend}]
    _, html = html_of(tmp_path, "lossy-intermittent", data)
    assert f"delay 150ms on client/dmz (delay by {backend}: " in html
    assert "loss 5% on proxy/dmz" in html and html.count("(delay by ") == 1


def test_a_node_whose_clock_is_off_says_so(tmp_path: Path) -> None:
    from harness.reports.html import clock_text

    assert [clock_text(x) for x in (7200, -90, 93784, 0)] == [
        "+2h",
        "-1m 30s",
        "+1d 2h 3m 4s",
        "+0s",
    ]
    from harness.reports.html import clock_text

    assert [clock_text(x) for x in (7200, -90, 93784, 0)] == [
        "+2h",
        "-1m 30s",
        "+1d 2h 3m 4s",
        "+0s",
    ]
    data = journal("lossy-intermittent")
    data["topology"]["nodes"][0]["clock_s"] = -7200
    _, html = html_of(tmp_path, "lossy-intermittent", data)
    assert "debian-12 (clock -2h)" in html and html.count("(clock ") == 1
