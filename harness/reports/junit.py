"""JUnit XML for one run, and merging several runs' files (junitparser).

One <testsuite> per phase that tests something: `configure` (a test case per Ansible task or
per `run:` command and node), each `attempt-N` (a test case per step, then one for the
symptom), `verify` (a test case per check), plus `run` (one test case: the verdict) and, when
an infrastructure phase (build, up, impair, collect...) failed, a suite for that phase.
<error> is an infrastructure error (the run could not do what it meant to: the verdict is
ERROR); <failure> is a product failure (the symptom where it should not be, or absent where it
should be; a failed check). Every suite carries the run's properties. Artifacts are referenced
with `[[ATTACHMENT|path]]` lines in <system-out>, paths relative to the run folder (or to
`attachment_root`), as the Jenkins JUnit Attachments plugin and GitLab read them.
See docs/reports.md."""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from junitparser import JUnitXml, TestSuite

from harness import outcomes
from harness.journal_model import AttemptPhase, PhaseBase
from harness.reports.journal import (
    INFRA_PHASES,
    TEARDOWN_PHASES,
    Outcome,
    Run,
    attempt_outcome,
    check_outcome,
    configure_items,
    finding_counts,
    fmt_time,
    is_log,
    num,
    phase_outcome,
    s,
    step_outcome,
    step_output,
    symptom_evidence,
)

_BAD_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CLASS_SAFE = re.compile(r"[^A-Za-z0-9_\-]+")


def xml_text(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry (ANSI escapes, NULs...)."""
    return _BAD_XML.sub("", text)


def timestamp(iso: object) -> str:
    """ISO 8601 without fraction or zone, as the JUnit XSD's timestamp pattern wants."""
    text = s(iso)
    m = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text)
    return m.group(0) if m else ""


def properties(run: Run) -> list[tuple[str, str]]:
    case = run.case
    j = run.model
    props = [
        ("scenario", run.scenario),
        ("title", s(j.title)),
        ("source", s(j.source)),
        ("run", run.run_id),
        ("role", run.role),
        ("cell", run.cell),
        ("fix", run.fix),
        ("verdict", run.verdict),
        ("rate", run.rate),
        ("interval", run.rate_text.partition(", ")[2]),
        ("reason", run.reason),
        ("ticket", s(case.ticket)),
        ("customer", s(case.customer)),
        ("severity", s(case.severity)),
        ("product_version", s(case.product_version)),
        ("engine", s(j.engine)),
        ("harness", s(j.harness)),
        ("started", s(j.started)),
        ("ended", s(j.ended)),
    ]
    props += [(f"matrix.{k}", s(v)) for k, v in sorted((j.matrix_cell or {}).items())]
    props += [(f"finding:{sig}", str(n)) for sig, n in finding_counts(run).items()]
    return [(k, xml_text(v)) for k, v in props if v]


class _Suite:
    def __init__(self, run: Run, phase: str, start: object = None) -> None:
        self.run = run
        self.phase = phase
        self.el = ET.Element("testsuite", name=f"{run.label}/{phase}")
        self.start = start
        self.cases: list[tuple[ET.Element, Outcome, float]] = []
        self.out: list[str] = []

    def case(
        self,
        name: str,
        outcome: Outcome,
        duration: float,
        output: str = "",
        attachments: Iterable[str] = (),
    ) -> None:
        cls = ".".join(_CLASS_SAFE.sub("_", x) for x in ("labharness", self.run.label, self.phase))
        tc = ET.Element(
            "testcase", name=xml_text(name) or "(unnamed)", classname=cls, time=fmt_time(duration)
        )
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(outcome.status)
        if tag:
            child = ET.SubElement(tc, tag, message=xml_text(outcome.message))
            if tag != "skipped":
                child.set("type", "InfrastructureError" if tag == "error" else "ProductFailure")
            if outcome.detail:
                child.text = xml_text(outcome.detail)
        lines = [xml_text(output)] if output else []
        lines += [f"[[ATTACHMENT|{a}]]" for a in attachments]
        if lines:
            ET.SubElement(tc, "system-out").text = "\n".join(lines)
        self.cases.append((tc, outcome, duration))

    def element(self) -> ET.Element:
        el = self.el
        counts = {
            k: sum(1 for _, o, _ in self.cases if o.status == k)
            for k in ("failed", "error", "skipped")
        }
        el.set("tests", str(len(self.cases)))
        el.set("failures", str(counts["failed"]))
        el.set("errors", str(counts["error"]))
        el.set("skipped", str(counts["skipped"]))
        el.set("time", fmt_time(sum(t for _, _, t in self.cases)))
        if timestamp(self.start):
            el.set("timestamp", timestamp(self.start))
        el.set("hostname", xml_text(socket.gethostname()) or "localhost")
        props = ET.SubElement(el, "properties")
        for k, v in properties(self.run):
            ET.SubElement(props, "property", name=k, value=v)
        for tc, _, _ in self.cases:
            el.append(tc)
        if self.out:
            ET.SubElement(el, "system-out").text = "\n".join(self.out)
        return el


def build_junit(run: Run, attachment_root: Path | None = None) -> ET.Element:
    def att(rel: str) -> str:
        if attachment_root is None:
            return rel
        return Path(os.path.relpath(run.folder / rel, attachment_root)).as_posix()

    artifacts = [rel for _, _, rel in run.artifacts()]
    generated = ["report.html", "topology.svg"]
    evidence = [att(r) for r in artifacts if r.startswith("captures/") or is_log(r)]
    evidence += [att(r) for r in ("REPRODUCE.md", "report.html") if r in artifacts + generated]
    suites = [
        suite
        for phase in run.phases
        if (suite := _phase_suite(run, phase, att, evidence)) is not None
    ]
    suites.append(_verdict_suite(run, [att(r) for r in artifacts + generated]))

    return testsuites(f"labharness {run.label} {run.run_id}", suites)


class SuiteLike(Protocol):
    def element(self) -> ET.Element: ...


def testsuites(name: str, suites: Sequence[SuiteLike]) -> ET.Element:
    """The <testsuites> root over `suites`, with their totals (a run's file, a verification's)."""
    root = ET.Element("testsuites", name=xml_text(name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for suite in suites:
        el = suite.element()
        for k in totals:
            totals[k] += int(el.get(k, "0"))
        seconds += float(el.get("time", "0"))
        root.append(el)
    for k, n in totals.items():
        root.set(k, str(n))
    root.set("time", fmt_time(seconds))
    return root


def _phase_suite(
    run: Run, phase: PhaseBase, att: Callable[[str], str], evidence: list[str]
) -> _Suite | None:
    """The suite for one phase; None for an infrastructure phase that did not error."""
    name = phase.phase
    suite = _Suite(run, name, phase.start)
    if name == "configure":
        for item in configure_items(phase):
            suite.case(item.name, item.outcome, item.duration, item.output)
        suite.out = [f"[[ATTACHMENT|{att(r)}]]" for r in run.ansible_artifacts()]
    elif isinstance(phase, AttemptPhase) and name.startswith("attempt-"):
        for step in phase.steps:
            label = f"{s(step.id, 'step')}: {s(step.description)}"
            suite.case(label, step_outcome(step), num(step.duration_s), step_output(step))
        suite.case(
            "symptom",
            attempt_outcome(run, phase),
            num(phase.duration_s),
            "\n".join(symptom_evidence(phase.symptom)),
            evidence,
        )
    elif name == "verify":
        for check in run.checks():
            oc = check_outcome(check)
            suite.case(s(check.name, "check"), oc, num(check.duration_s), oc.detail)
        if (run.folder / "verify" / "verify-junit.xml").is_file():
            suite.out = [f"[[ATTACHMENT|{att('verify/verify-junit.xml')}]]"]
        if phase_outcome(phase).status == "error" and not suite.cases:
            suite.case("verify", phase_outcome(phase), num(phase.duration_s))
    elif (name in INFRA_PHASES + TEARDOWN_PHASES or name.startswith("up-")) and (
        phase_outcome(phase).status == "error"
    ):
        suite.case(name, phase_outcome(phase), num(phase.duration_s))
    else:
        return None
    return suite


def _verdict_suite(run: Run, files: list[str]) -> _Suite:
    """The verdict: one test case CI can go by, passed when the role got what it hoped for."""
    verdict = _Suite(run, "run", run.model.started)
    v = run.verdict
    text = f"{v} {run.rate_text}".strip() + (f" - {run.reason}" if run.reason else "")
    got = outcomes.role_result(run.role, v)
    if got == "hoped":
        oc = Outcome("passed", text)
    elif got == "not hoped":
        oc = Outcome("failed", text)
    else:
        oc = Outcome("error", f"ERROR: {text}" if v != outcomes.ERROR else text)
    verdict.case(f"verdict ({run.role})", oc, _run_seconds(run), text, files)
    return verdict


def _run_seconds(run: Run) -> float:
    return sum(num(p.duration_s) for p in run.phases)


def write_junit(run: Run, folder: Path, attachment_root: Path | None = None) -> Path:
    root = build_junit(run, attachment_root)
    ET.indent(root)
    path = folder / "junit.xml"
    tmp = path.with_suffix(".xml.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path


def merge_junit(files: Iterable[Path], out: Path, name: str | None = None) -> Path:
    """Merge run files into one <testsuites> (suite names carry each run's label, so a
    baseline and a candidate, or matrix cells, stay apart). Missing files are skipped."""
    merged = JUnitXml(name or "labharness")
    for f in files:
        if not Path(f).is_file():
            continue
        xml = JUnitXml.fromfile(str(f))
        suites = [xml] if isinstance(xml, TestSuite) else list(xml)
        for suite in suites:
            merged.add_testsuite(suite)
    merged.update_statistics()  # type: ignore[no-untyped-call]
    out.parent.mkdir(parents=True, exist_ok=True)
    merged.write(str(out), pretty=True)
    return out
