"""junit.xml from journals captured from real runs: structure, counts, the Jenkins XSD,
attachments, merging a verify-fix pair with junitparser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from junitparser import JUnitXml

from harness.reports import write_reports
from harness.reports.journal import Run, load
from harness.reports.junit import merge_junit, write_junit
from tests.unit.reportkit import XSD, journal, make_run

JENKINS = xmlschema.XMLSchema(str(XSD))  # a real XML Schema validator, not a hand-written one


def xsd_errors(root: ET.Element) -> list[str]:
    """Every way the document breaks tests/unit/junit-jenkins.xsd; [] when it is valid."""
    return [f"{e.path}: {e.reason}" for e in JENKINS.iter_errors(root)]


ALL = [
    "tls-reproduce",
    "tls-baseline",
    "tls-candidate",
    "lossy-intermittent",
    "repro-error",
    "tls-ansible",
    "cache-partition",
]


def junit(tmp_path: Path, name: str) -> tuple[Path, ET.Element]:
    folder = make_run(tmp_path, name)
    path = write_junit(Run(load(folder), folder), folder)
    return path, ET.parse(path).getroot()


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", "").split("/")[-1]: s for s in root.iter("testsuite")}


def outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


@pytest.mark.parametrize("name", ALL)
def test_valid_against_jenkins_xsd(tmp_path: Path, name: str) -> None:
    path, root = junit(tmp_path, name)
    assert xsd_errors(root) == []
    # and junitparser (what CI tooling in Python uses) reads it with the same counts
    xml = JUnitXml.fromfile(str(path))
    total = sum(s.tests for s in xml)
    assert total == int(root.get("tests", "-1")) == len(list(root.iter("testcase")))
    assert sum(s.failures for s in xml) == int(root.get("failures", "-1"))
    assert sum(s.errors for s in xml) == int(root.get("errors", "-1"))
    assert sum(s.skipped for s in xml) == int(root.get("skipped", "-1"))


def test_the_xsd_validator_rejects_what_jenkins_would(tmp_path: Path) -> None:
    """The check can fail: an unknown attribute, a case without a name, a bad count."""
    _, root = junit(tmp_path, "tls-reproduce")
    case = next(root.iter("testcase"))
    case.set("colour", "red")
    del case.attrib["name"]
    root.set("tests", "many")
    errors = " | ".join(xsd_errors(root))
    assert "colour" in errors and "name" in errors and "many" in errors


def test_a_suite_per_phase_and_a_case_per_step(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "tls-reproduce")
    by = suites(root)
    assert list(by) == ["configure", "attempt-1", "attempt-2", "attempt-3", "verify", "run"]
    assert by["configure"].get("tests") == "1"
    for n in (1, 2, 3):
        names = [c.get("name", "") for c in by[f"attempt-{n}"].iter("testcase")]
        assert names[0].startswith("step-1: proxy: wait for port 443")
        assert names[1].startswith("request: client$ curl")
        assert names[2] == "symptom"
    assert by["verify"].get("tests") == "3"
    assert root.get("tests") == "14" and root.get("failures") == "0"
    assert root.get("errors") == "0" and root.get("skipped") == "0"
    verdict = next(by["run"].iter("testcase"))
    assert verdict.get("name") == "verdict (reproduce)" and outcome(verdict) == "passed"


def test_properties(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "tls-candidate")
    for suite in root.iter("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["scenario"] == "tls-protocol-mismatch"
        assert props["verdict"] == "NOT_REPRODUCED" and props["rate"] == "0/3"
        assert props["ticket"] == "SUP-48213" and props["customer"] == "acme"
        assert props["severity"] == "2"
        assert props["engine"] == "20.10.24+dfsg1" and props["harness"] == "0.1.0"
        assert props["fix"] == "enable-tls13" and props["role"] == "candidate"
        assert props["run"] == journal("tls-candidate")["run"]


def test_matrix_cell_property(tmp_path: Path) -> None:
    data = journal("tls-reproduce")
    data["matrix_cell"] = {"client_os": "debian-11"}
    folder = make_run(tmp_path, "cell", data)
    root = ET.parse(write_junit(Run(load(folder), folder), folder)).getroot()
    props = {p.get("name"): p.get("value") for p in next(root.iter("testsuite")).iter("property")}
    assert props["cell"] == "client_os=debian-11"
    assert props["matrix.client_os"] == "debian-11"
    assert (
        next(root.iter("testsuite"))
        .get("name", "")
        .startswith("tls-protocol-mismatch[client_os=debian-11]/")
    )


def test_candidate_hopes_the_symptom_absent(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "tls-candidate")
    by = suites(root)
    for n in (1, 2, 3):
        symptom = [c for c in by[f"attempt-{n}"].iter("testcase") if c.get("name") == "symptom"]
        assert outcome(symptom[0]) == "passed"
    assert root.get("failures") == "0"


def test_intermittent_absent_attempts_are_skipped_not_failed(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "lossy-intermittent")
    by = suites(root)
    outcomes = {
        n: outcome(
            next(c for c in by[f"attempt-{n}"].iter("testcase") if c.get("name") == "symptom")
        )
        for n in range(1, 7)
    }
    assert outcomes == {
        1: "passed",
        2: "passed",
        3: "skipped",
        4: "passed",
        5: "skipped",
        6: "skipped",
    }
    assert root.get("skipped") == "3" and root.get("failures") == "0"
    skipped = by["attempt-3"].find("testcase[@name='symptom']/skipped")
    assert skipped is not None and "3/6" in skipped.get("message", "")


def test_not_reproduced_is_a_failure(tmp_path: Path) -> None:
    data = journal("tls-candidate")
    data["role"], data["fix"] = "reproduce", None
    folder = make_run(tmp_path, "nr", data)
    root = ET.parse(write_junit(Run(load(folder), folder), folder)).getroot()
    by = suites(root)
    failure = by["attempt-1"].find("testcase[@name='symptom']/failure")
    assert failure is not None and failure.get("type") == "ProductFailure"
    assert "symptom absent" in failure.get("message", "")
    assert outcome(next(by["run"].iter("testcase"))) == "failure"
    assert root.get("failures") == "4" and root.get("errors") == "0"


def test_error_verdict_is_an_error_never_a_failure(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "repro-error")
    by = suites(root)
    probe = by["attempt-1"].find("testcase[@name='probe: server$ true']/error")
    assert probe is not None and "node server is exited" in probe.get("message", "")
    assert probe.get("type") == "InfrastructureError"
    symptom = by["attempt-1"].find("testcase[@name='symptom']/error")
    assert symptom is not None
    assert outcome(next(by["run"].iter("testcase"))) == "error"
    assert root.get("failures") == "0" and root.get("errors") == "3"


def test_ansible_tasks_are_cases(tmp_path: Path) -> None:
    _, root = junit(tmp_path, "tls-ansible")
    names = [c.get("name") for c in suites(root)["configure"].iter("testcase")]
    assert names == [
        "tls.yml: TLS folder [proxy]",
        "tls.yml: Self-signed certificate when none is there [proxy]",
        "tls.yml: TLS server block [proxy]",
        "tls.yml: Configuration is valid [proxy]",
        "tls.yml: reload nginx [proxy]",
    ]


def test_failed_ansible_task_is_an_error(tmp_path: Path) -> None:
    data = journal("tls-ansible")
    configure = next(p for p in data["phases"] if p["phase"] == "configure")
    configure["items"][0]["tasks"][2].update(status="failed", msg="template error: <boom>")
    configure["items"][0].update(status="failed", ok=False, rc=2)
    configure["result"], configure["error"] = "error", "task TLS server block failed"
    folder = make_run(tmp_path, "bad", data)
    root = ET.parse(write_junit(Run(load(folder), folder), folder)).getroot()
    err = suites(root)["configure"].find(
        "testcase[@name='tls.yml: TLS server block [proxy]']/error"
    )
    assert err is not None and "template error: <boom>" in err.get("message", "")
    assert xsd_errors(root) == []


def test_attachments(tmp_path: Path) -> None:
    path, root = junit(tmp_path, "tls-reproduce")
    symptom = suites(root)["attempt-1"].find("testcase[@name='symptom']/system-out")
    assert symptom is not None
    lines = [x for x in (symptom.text or "").splitlines() if x.startswith("[[ATTACHMENT|")]
    assert "[[ATTACHMENT|captures/dmz.pcap]]" in lines
    assert "[[ATTACHMENT|artifacts/proxy/container.log]]" in lines
    assert "[[ATTACHMENT|REPRODUCE.md]]" in lines
    assert "[[ATTACHMENT|report.html]]" in lines
    verdict = next(suites(root)["run"].iter("testcase")).find("system-out")
    assert verdict is not None and "[[ATTACHMENT|artifacts/proxy/inspect.json]]" in (
        verdict.text or ""
    )
    for line in (verdict.text or "").splitlines():
        if line.startswith("[[ATTACHMENT|") and line[13:-2] not in ("report.html", "topology.svg"):
            assert (path.parent / line[13:-2]).is_file(), line


def test_attachment_root(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "tls-reproduce")
    path = write_junit(Run(load(folder), folder), folder, attachment_root=tmp_path)
    assert f"[[ATTACHMENT|{folder.relative_to(tmp_path).as_posix()}/captures/dmz.pcap]]" in (
        path.read_text()
    )


def test_output_is_escaped_and_xml_safe(tmp_path: Path) -> None:
    data = journal("tls-reproduce")
    step = next(p for p in data["phases"] if p["phase"] == "attempt-1")["steps"][1]
    step["stdout"] = "<b>&amp; \x1b[31mred\x1b[0m \x00 ]]> done"
    folder = make_run(tmp_path, "esc", data)
    path = write_junit(Run(load(folder), folder), folder)
    root = ET.parse(path).getroot()  # parses: no raw control characters
    out = suites(root)["attempt-1"].find("testcase[2]/system-out")
    assert out is not None and "<b>&amp; [31mred[0m  ]]> done" in (out.text or "")


def test_merge_verify_fix_pair(tmp_path: Path) -> None:
    a = make_run(tmp_path, "tls-baseline")
    b = make_run(tmp_path, "tls-candidate")
    files = [Path(write_reports(a)["junit"]), Path(write_reports(b)["junit"])]
    out = merge_junit([*files, tmp_path / "missing.xml"], tmp_path / "merged.xml")
    root = ET.parse(out).getroot()
    assert xsd_errors(root) == []
    names = [s.get("name", "") for s in root.iter("testsuite")]
    assert len(names) == len(set(names)) == 12
    assert "tls-protocol-mismatch+baseline/attempt-1" in names
    assert "tls-protocol-mismatch+enable-tls13/attempt-1" in names
    singles = [ET.parse(f).getroot() for f in files]
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, "-1")) == sum(int(r.get(key, "0")) for r in singles), key
    assert root.get("tests") == "28"


def test_merge_runs_writes_missing_reports(tmp_path: Path) -> None:
    from harness.reports import merge_runs

    a = make_run(tmp_path, "tls-baseline")
    b = make_run(tmp_path, "tls-candidate")
    out = merge_runs([a, b], tmp_path / "verify-fix-junit.xml", "verify-fix")
    root = ET.parse(out).getroot()
    assert root.get("name") == "verify-fix" and root.get("tests") == "28"
    assert (a / "report.html").is_file() and (b / "allure-results").is_dir()
