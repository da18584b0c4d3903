"""The reports of a verification (`<reports>/<scenario>/verify-<id>/`): report.html, junit.xml
and allure-results/, built from its verification.json and the two runs' journal.json alone, so
the verdict on a fix (FIXED / NOT_FIXED / REGRESSION / INCONCLUSIVE / ERROR), not each side's
REPRODUCED / NOT_REPRODUCED, is what a person, CI and Allure read. A run folder or journal that
is missing never stops them: the page and the suites say what is missing. See docs/reports.md."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from attr import asdict

from harness import outcomes
from harness import verification_model as vm
from harness.journal_model import Check, Journal
from harness.reports.allure import RESULTS, STATUS, keep, md5, ms, prop_escape, result_uuid
from harness.reports.html import template_env
from harness.reports.journal import (
    Outcome,
    Run,
    attempt_outcome,
    check_outcome,
    fmt_time,
    s,
    symptom_evidence,
)
from harness.reports.journal import load as load_journal
from harness.reports.junit import testsuites, timestamp, xml_text
from harness.reports.running_configs import compare

log = logging.getLogger(__name__)

SUITE = "verification"
ROLES = ("baseline", "candidate")
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Fix not verified",
        "description": "The candidate still shows the symptom (NOT_FIXED), breaks a check that "
        "passed on the baseline (REGRESSION), or proves too little (INCONCLUSIVE).",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Infrastructure errors",
        "description": "A side could not run (verdict ERROR), never a product failure.",
        "matchedStatuses": ["broken"],
    },
]


@dataclass
class VerificationReports:
    """What `write_verification_reports` wrote (paths, None when not written) and why not."""

    folder: str
    verification: str = ""
    html: str | None = None
    junit: str | None = None
    allure: str | None = None
    errors: list[str] = field(default_factory=list)

    def written(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("html", self.html), ("junit", self.junit), ("allure", self.allure))
            if v
        }


@dataclass
class SideView:
    """One side as the reports read it: its record in verification.json and its run journal
    (None, with `missing` saying why, when the run folder or its journal is gone)."""

    side: vm.Side
    folder: Path
    run: Run | None
    missing: str = ""

    @property
    def rate_text(self) -> str:
        iv = self.side.interval
        return f"{self.side.rate}, {iv.text}" if iv else self.side.rate


@dataclass
class View:
    doc: vm.Verification
    folder: Path
    baseline: SideView
    candidate: SideView

    @property
    def sides(self) -> tuple[SideView, SideView]:
        return self.baseline, self.candidate


def _side_view(side: vm.Side, folder: Path) -> SideView:
    run_folder = (folder / side.folder) if side.folder else folder / ".." / side.run
    if not side.folder and not side.run:
        return SideView(side, run_folder, None, "the verification names no run folder")
    if not (run_folder / "journal.json").is_file():
        what = "folder" if not run_folder.is_dir() else "journal.json"
        rel = side.folder or f"../{side.run}"
        return SideView(side, run_folder, None, f"run {what} missing: {rel}")
    return SideView(side, run_folder, Run(load_journal(run_folder), run_folder))


def load_view(folder: Path) -> View:
    """The verification in `folder` with both runs' journals; raises ValueError when
    verification.json is missing or not one (nothing to report on)."""
    doc = vm.load(folder)
    if doc is None:
        raise ValueError(f"{folder / vm.FILE}: missing or not a verification")
    return View(doc, folder, _side_view(doc.baseline, folder), _side_view(doc.candidate, folder))


def verdict_class(verdict: str) -> str:
    if verdict == outcomes.FIXED:
        return "good"
    if verdict in (outcomes.NOT_FIXED, outcomes.REGRESSION):
        return "bad"
    return "error"


def verdict_outcome(doc: vm.Verification) -> Outcome:
    """The verdict as a test outcome: passed only when FIXED; ERROR is infrastructure."""
    text = f"{doc.verdict} - {doc.reason}" if doc.reason else doc.verdict
    detail = "\n".join(doc.why)
    if doc.verdict == outcomes.FIXED:
        return Outcome("passed", text, detail)
    if doc.verdict == outcomes.ERROR:
        return Outcome("error", text, detail)
    return Outcome("failed", text, detail)


# -- report.html ------------------------------------------------------------------------------


def _check_row(c: Check) -> dict[str, str]:
    oc = check_outcome(c)
    if c.exit_code is not None or c.expected is not None:
        expected, got = f"exit {s(c.expected, '0')}", f"exit {s(c.exit_code, '?')}"
    else:
        expected, got = "ok", s(c.outcome) or ("ok" if c.passed else "")
    if c.error:
        got = s(c.error)
    return {
        "name": s(c.name, "check"),
        "status": oc.status,
        "word": "ok" if oc.status == "passed" else oc.status,
        "expected": expected,
        "got": got,
        "output": s(c.output) or s(c.message),
    }


def _attempt_rows(v: SideView) -> list[dict[str, Any]]:
    if v.run is None:
        return []
    rows = []
    for p in v.run.attempts():
        oc = attempt_outcome(v.run, p)
        observed = p.observed if p.observed is not None else p.result == "observed"
        rows.append(
            {
                "phase": p.phase,
                "word": s(p.result) or ("observed" if observed else "absent"),
                "status": oc.status,
                "message": oc.message,
                "evidence": symptom_evidence(p.symptom),
                "error": s(p.error),
            }
        )
    return rows


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) per line of a unified diff."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            cls = "hdr"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = "ctx"
        out.append((cls, line))
    return out


_ROLE_CLASS = {"hoped": "good", "not hoped": "bad", "error": "error"}


def context(view: View) -> dict[str, Any]:
    doc = view.doc
    sides = [
        {
            "role": v.side.role,
            "side": v.side,
            "rate_text": v.rate_text,
            "verdict_class": _ROLE_CLASS[outcomes.role_result(v.side.role, v.side.verdict)],
            "report": f"{v.side.folder or '../' + v.side.run}/report.html",
            "has_report": (v.folder / "report.html").is_file(),
            "missing": v.missing,
            "attempts": _attempt_rows(v),
            "checks": [_check_row(c) for c in v.side.checks],
        }
        for v in view.sides
    ]
    return {
        "doc": doc,
        "case": doc.case,
        "verdict_class": verdict_class(doc.verdict),
        "sides": sides,
        "diff": _diff_lines(doc.overlay.diff),
        "configs": [
            {**vars(d), "lines": _diff_lines("\n".join(d.diff))}
            for d in compare(*(_journal_of(v) for v in view.sides))
        ],
    }


def _journal_of(v: SideView) -> tuple[Path, Journal | None]:
    return v.folder, v.run.model if v.run is not None else None


def render_html(view: View) -> str:
    return template_env().get_template("verification.html.j2").render(**context(view))


def write_html(view: View) -> Path:
    path = view.folder / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(view), encoding="utf-8")
    tmp.replace(path)
    return path


# -- junit.xml ----------------------------------------------------------------------------------


class _Suite:
    """One <testsuite> as harness/reports/junit.py writes them (the Jenkins XSD's shape)."""

    def __init__(self, name: str, props: list[tuple[str, str]], start: object = None) -> None:
        self.name = name
        self.props = props
        self.start = start
        self.cases: list[tuple[ET.Element, Outcome, float]] = []

    def case(self, name: str, cls: str, outcome: Outcome, seconds: float, out: str = "") -> None:
        tc = ET.Element("testcase", name=xml_text(name) or "(unnamed)", classname=cls)
        tc.set("time", fmt_time(seconds))
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(outcome.status)
        if tag:
            child = ET.SubElement(tc, tag, message=xml_text(outcome.message))
            if tag != "skipped":
                child.set("type", "InfrastructureError" if tag == "error" else "ProductFailure")
            if outcome.detail:
                child.text = xml_text(outcome.detail)
        if out:
            ET.SubElement(tc, "system-out").text = xml_text(out)
        self.cases.append((tc, outcome, seconds))

    def element(self) -> ET.Element:
        el = ET.Element("testsuite", name=xml_text(self.name))
        el.set("tests", str(len(self.cases)))
        for attr, status in (("failures", "failed"), ("errors", "error"), ("skipped", "skipped")):
            el.set(attr, str(sum(1 for _, o, _ in self.cases if o.status == status)))
        el.set("time", fmt_time(sum(t for _, _, t in self.cases)))
        if timestamp(self.start):
            el.set("timestamp", timestamp(self.start))
        el.set("hostname", xml_text(socket.gethostname()) or "localhost")
        props = ET.SubElement(el, "properties")
        for k, v in self.props:
            ET.SubElement(props, "property", name=k, value=xml_text(v))
        for tc, _, _ in self.cases:
            el.append(tc)
        return el


def _properties(doc: vm.Verification) -> list[tuple[str, str]]:
    props = [
        ("verification", doc.id),
        ("scenario", doc.scenario),
        ("title", s(doc.title)),
        ("fix", s(doc.overlay.fix)),
        ("kind", s(doc.overlay.kind)),
        ("verdict", doc.verdict),
        ("reason", doc.reason),
        ("ticket", s(doc.case.ticket)),
        ("customer", s(doc.case.customer)),
    ]
    for v in (doc.baseline, doc.candidate):
        rate = f"{v.rate}, {v.interval.text}" if v.interval else v.rate
        props += [(f"{v.role}.run", v.run), (f"{v.role}.rate", rate)]
    return [(k, v) for k, v in props if v]


def _side_suite(view: View, v: SideView) -> _Suite:
    """A side's attempts (symptom observed or absent, as the role hoped) and its checks."""
    doc = view.doc
    props = [*_properties(doc), ("role", v.side.role), ("run.verdict", v.side.verdict)]
    suite = _Suite(v.side.role, props, v.side.started)
    cls = ".".join(("labharness", xml_text(doc.scenario).replace(".", "_"), SUITE, v.side.role))
    if v.run is None:
        suite.case("run", cls, Outcome("error", f"ERROR: {v.missing}"), 0.0)
    else:
        for p in v.run.attempts():
            oc = attempt_outcome(v.run, p)
            suite.case(f"{p.phase}: symptom", cls, oc, p.duration_s or 0.0, oc.detail)
    for c in v.side.checks:
        oc = check_outcome(c)
        suite.case(f"check: {s(c.name, 'check')}", cls, oc, c.duration_s or 0.0, oc.detail)
    return suite


def build_junit(view: View) -> ET.Element:
    doc = view.doc
    suites = [_side_suite(view, v) for v in view.sides]
    verdict = _Suite(SUITE, _properties(doc), doc.started)
    oc = verdict_outcome(doc)
    lines = [
        f"{v.role}: {v.verdict} ({v.rate}{', ' + v.interval.text if v.interval else ''})"
        for v in (doc.baseline, doc.candidate)
    ]
    lines.append("[[ATTACHMENT|report.html]]")
    cls = f"labharness.{xml_text(doc.scenario).replace('.', '_')}.{SUITE}"
    verdict.case("verdict", cls, oc, 0.0, "\n".join(lines))
    suites.append(verdict)
    return testsuites(f"labharness verification {doc.id}", suites)


def write_junit(view: View) -> Path:
    root = build_junit(view)
    ET.indent(root)
    path = view.folder / "junit.xml"
    tmp = path.with_suffix(".xml.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path


# -- allure-results/ ---------------------------------------------------------------------------


def _attach(
    out: Path, doc: vm.Verification, name: str, body: str, *, mime: str, ext: str
) -> Attachment:
    target = f"{md5(doc.id, name)}-attachment{ext}"
    (out / target).write_text(body, encoding="utf-8")
    return Attachment(name=name, source=target, type=mime)


def _side_step(v: SideView) -> TestStepResult:
    """A side as one step: its attempts (with their evidence) and its checks."""
    subs = []
    if v.run is not None:
        for p in v.run.attempts():
            oc = attempt_outcome(v.run, p)
            subs.append(
                TestStepResult(
                    name=f"{p.phase}: {s(p.result) or 'did not finish'}",
                    status=STATUS[oc.status],
                    statusDetails=StatusDetails(message=oc.message, trace=oc.detail or None),
                    stage="finished",
                    start=ms(p.start),
                    stop=ms(p.end),
                )
            )
    for c in v.side.checks:
        oc = check_outcome(c)
        subs.append(
            TestStepResult(
                name=f"check: {s(c.name, 'check')}",
                status=STATUS[oc.status],
                statusDetails=StatusDetails(message=oc.message) if oc.message else None,
                stage="finished",
            )
        )
    side = v.side
    ok = outcomes.role_result(side.role, side.verdict)
    status = {"hoped": "passed", "not hoped": "failed", "error": "error"}[ok]
    message = f"{side.verdict} ({v.rate_text})" + (f" - {v.missing}" if v.missing else "")
    return TestStepResult(
        name=f"{side.role}: {side.verdict} {side.rate}",
        status=STATUS[status],
        statusDetails=StatusDetails(message=message),
        stage="finished",
        steps=subs,
        parameters=[Parameter(name="run", value=side.run)],
        start=ms(side.started),
        stop=ms(side.ended),
    )


def _labels(doc: vm.Verification) -> list[Label]:
    labels = [
        Label(name="epic", value=doc.scenario),
        Label(name="story", value=SUITE),
        Label(name="parentSuite", value=doc.scenario),
        Label(name="suite", value=SUITE),
        Label(name="framework", value="labharness"),
        Label(name="language", value="labharness"),
    ]
    for value in (doc.case.ticket, doc.case.customer):
        if value:
            labels.append(Label(name="tag", value=value))
    if doc.overlay.fix:
        labels.append(Label(name="tag", value=f"fix:{doc.overlay.fix}"))
    return labels


def build_allure(view: View, out: Path) -> Path:
    doc = view.doc
    oc = verdict_outcome(doc)
    attachments = [
        _attach(
            out,
            doc,
            "verification.json",
            (view.folder / vm.FILE).read_text(encoding="utf-8"),
            mime="application/json",
            ext=".json",
        )
    ]
    if doc.overlay.diff:
        attachments.append(
            _attach(out, doc, "scenario diff", doc.overlay.diff, mime="text/plain", ext=".diff")
        )
    if (view.folder / "report.html").is_file():
        target = f"{md5(doc.id, 'report.html')}-attachment.html"
        shutil.copyfile(view.folder / "report.html", out / target)
        attachments.append(Attachment(name="report.html", source=target, type="text/html"))
    key = f"{doc.scenario}.{SUITE}.{doc.overlay.fix or doc.overlay.fix_file or ''}"
    params = [Parameter(name="fix", value=s(doc.overlay.fix or doc.overlay.fix_file))]
    params += [Parameter(name=f"{v.side.role} rate", value=v.rate_text) for v in view.sides]
    params.append(Parameter(name="verification", value=doc.id))
    result = TestResult(
        uuid=result_uuid(doc.id, SUITE),
        historyId=md5(key),
        testCaseId=md5(key),
        fullName=key,
        name=f"verify-fix {doc.overlay.fix or ''}: {doc.verdict}".replace("  ", " "),
        status=STATUS[oc.status],
        statusDetails=StatusDetails(message=oc.message, trace=oc.detail or None),
        stage="finished",
        description=s(doc.overlay.description) or None,
        steps=[_side_step(v) for v in view.sides],
        attachments=attachments,
        parameters=params,
        start=ms(doc.started),
        stop=ms(doc.ended),
        labels=_labels(doc),
        titlePath=[doc.scenario, SUITE],
    )
    path = out / f"{result.uuid}-result.json"
    path.write_text(
        json.dumps(asdict(result, filter=keep), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return path


def write_allure(view: View) -> Path:
    doc = view.doc
    out = view.folder / RESULTS
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_allure(view, out)
    env = [
        ("verification", doc.id),
        ("scenario", doc.scenario),
        ("fix", s(doc.overlay.fix)),
        ("verdict", doc.verdict),
        *((f"{v.side.role}", f"{v.side.verdict} {v.rate_text}") for v in view.sides),
        ("ticket", s(doc.case.ticket)),
        ("harness", s(doc.harness)),
    ]
    (out / "environment.properties").write_text(
        "".join(f"{prop_escape(k, True)}={prop_escape(v)}\n" for k, v in env if v),
        encoding="ascii",
    )
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=1), encoding="utf-8")
    return out


# -- the entry point ----------------------------------------------------------------------------


def write_verification_reports(folder: Path) -> VerificationReports:
    """Write report.html, junit.xml and allure-results/ of the verification in `folder`, from
    verification.json and the runs' journals; never raises: what could not be written is in
    `errors` (the verification.json, the verdict, stays as it is)."""
    folder = Path(folder)
    result = VerificationReports(folder=str(folder))
    try:
        view = load_view(folder)
    except ValueError as exc:
        result.errors.append(f"verification: {exc}")
        return result
    result.verification = view.doc.id
    steps: tuple[tuple[str, Callable[[View], Path]], ...] = (
        ("html", write_html),  # first: Allure attaches it
        ("junit", write_junit),
        ("allure", write_allure),
    )
    for name, make in steps:
        try:
            path = make(view)
        except Exception as exc:  # a report must never lose the verdict
            log.warning("report %s not written for %s: %s", name, folder, exc, exc_info=True)
            result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        setattr(result, name, str(path))
    return result
