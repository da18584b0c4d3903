"""Allure 2 results for one run, in <folder>/allure-results/ (rewritten each time).

A result per phase-level test: `setup` (build, preflight, up, capture, impair), `configure`,
each `attempt-N`, each verify check, `collect` (collect and down). Labels: epic = scenario,
feature = each lab in the topology, story = phase, severity from the case; steps per phase and
per scenario step; attachments (step output, node logs, pcaps, REPRODUCE.md, the topology
picture) copied in. `environment.properties` and `categories.json` (infrastructure errors
apart from product failures) beside them. Built with allure_commons' model classes.
See docs/reports.md."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    Status,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from attr import asdict

from harness.journal_model import (
    AttemptPhase,
    BuildPhase,
    CapturePhase,
    CollectPhase,
    DownPhase,
    ImpairPhase,
    PhaseBase,
    Symptom,
    UpPhase,
)
from harness.reports.journal import (
    INFRA_PHASES,
    TEARDOWN_PHASES,
    Outcome,
    Run,
    attempt_outcome,
    check_outcome,
    configure_items,
    is_log,
    phase_outcome,
    s,
    step_outcome,
    step_output,
    symptom_evidence,
)

RESULTS = "allure-results"
STATUS = {
    "passed": Status.PASSED,
    "failed": Status.FAILED,
    "error": Status.BROKEN,
    "skipped": Status.SKIPPED,
}
MIME = {
    ".log": "text/plain",
    ".txt": "text/plain",
    ".md": "text/plain",
    ".conf": "text/plain",
    ".yml": "text/plain",
    ".yaml": "text/plain",
    ".json": "application/json",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".html": "text/html",
    ".pcap": "application/vnd.tcpdump.pcap",
}
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Infrastructure errors",
        "description": "The run could not do what it meant to (engine, build, node, "
        "configure, a step that could not run): verdict ERROR, never a product failure.",
        "matchedStatuses": ["broken"],
    },
    {
        "name": "Symptom not reproduced",
        "description": "The customer's symptom was absent where a reproduction expected it.",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s)symptom absent.*",
    },
    {
        "name": "Symptom still present",
        "description": "The fix or workaround was applied and the symptom was still observed.",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s)symptom observed.*",
    },
    {
        "name": "Product failures",
        "description": "A verify check failed: the product misbehaves.",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Intermittent: symptom absent in this attempt",
        "matchedStatuses": ["skipped"],
        "messageRegex": "(?s)symptom absent in this attempt.*",
    },
]


def ms(iso: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(s(iso)).timestamp() * 1000)
    except ValueError:
        return None


def result_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "labharness:" + "/".join(parts)))


def md5(*parts: str) -> str:
    return hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()


class _Writer:
    def __init__(self, run: Run, out: Path) -> None:
        self.run = run
        self.out = out
        self.copied: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.count = 0

    def file(self, rel: str, name: str | None = None) -> Attachment | None:
        """Attach a file of the run folder (copied once, shared by every result)."""
        src = self.run.folder / rel
        if not src.is_file():
            return None
        ext = src.suffix.lower() if src.suffix else ".txt"
        if rel not in self.copied:
            target = f"{md5(self.run.run_id, rel)}-attachment{ext}"
            try:
                os.link(src, self.out / target)
            except OSError:
                shutil.copyfile(src, self.out / target)
            self.copied[rel] = target
        # Allure shows a file once, under one name: keep the first name given.
        name = self.names.setdefault(rel, name or rel)
        return Attachment(name=name, source=self.copied[rel], type=MIME.get(ext, "text/plain"))

    def text(self, name: str, body: str, key: str) -> Attachment | None:
        if not body:
            return None
        target = f"{md5(self.run.run_id, 'text', key)}-attachment.txt"
        (self.out / target).write_text(body, encoding="utf-8")
        return Attachment(name=name, source=target, type="text/plain")

    def data(self, name: str, value: Any, key: str) -> Attachment | None:
        """A JSON attachment (written once; None for an empty value)."""
        if not value:
            return None
        target = f"{md5(self.run.run_id, 'json', key)}-attachment.json"
        self.write_json(target, value)
        return Attachment(name=name, source=target, type="application/json")

    def labels(self, story: str) -> list[Label]:
        run = self.run
        labels = [
            Label(name="epic", value=run.scenario),
            Label(name="story", value=story),
            Label(name="parentSuite", value=run.scenario),
            Label(name="suite", value=run.label),
            Label(name="subSuite", value=story),
            Label(name="framework", value="labharness"),
            Label(name="language", value="labharness"),
        ]
        labs = []
        for node in run.model.topology.nodes:
            lab = node.lab or node.os or node.image or ""
            if lab and lab not in labs:
                labs.append(lab)
        labels += [Label(name="feature", value=lab) for lab in labs]
        if run.severity:
            labels.append(Label(name="severity", value=run.severity))
        for value in (run.case.ticket, run.case.customer):
            if value:
                labels.append(Label(name="tag", value=value))
        if run.fix:
            labels.append(Label(name="tag", value=f"fix:{run.fix}"))
        return labels

    def params(self) -> list[Parameter]:
        run = self.run
        out = [Parameter(name="role", value=run.role), Parameter(name="run", value=run.run_id)]
        if run.fix:
            out.append(Parameter(name="fix", value=run.fix))
        if run.cell:
            out.append(Parameter(name="cell", value=run.cell))
        return out

    def result(
        self,
        name: str,
        story: str,
        outcome: Outcome,
        start: Any,
        stop: Any,
        *,
        steps: list[TestStepResult] | None = None,
        attachments: list[Attachment | None] | None = None,
        description: str = "",
        key: str = "",
    ) -> None:
        run = self.run
        key = key or name
        result = TestResult(
            uuid=result_uuid(run.run_id, story, key),
            historyId=md5(run.label, story, key),
            testCaseId=md5(run.scenario, story, key),
            fullName=f"{run.label}.{story}.{key}",
            name=name,
            status=STATUS[outcome.status],
            statusDetails=StatusDetails(
                message=outcome.message or None, trace=outcome.detail or None
            )
            if outcome.status != "passed" or outcome.detail
            else None,
            stage="finished",
            description=description or None,
            steps=steps or [],
            attachments=[a for a in attachments or [] if a is not None],
            parameters=self.params(),
            start=ms(start),
            stop=ms(stop),
            labels=self.labels(story),
            titlePath=[run.scenario, run.label, story],
        )
        self.write_json(f"{result.uuid}-result.json", asdict(result, filter=keep))
        self.count += 1

    def write_json(self, name: str, data: Any) -> None:
        (self.out / name).write_text(
            json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8"
        )


def keep(_attr: Any, value: Any) -> bool:
    return bool(value) or value is False


def _step(
    name: str,
    outcome: Outcome,
    start: Any,
    stop: Any,
    *,
    steps: list[TestStepResult] | None = None,
    attachments: list[Attachment | None] | None = None,
    params: dict[str, Any] | None = None,
) -> TestStepResult:
    return TestStepResult(
        name=name,
        status=STATUS[outcome.status],
        statusDetails=StatusDetails(message=outcome.message) if outcome.message else None,
        stage="finished",
        steps=steps or [],
        attachments=[a for a in attachments or [] if a is not None],
        parameters=[
            Parameter(name=k, value=s(v)) for k, v in (params or {}).items() if v not in (None, "")
        ],
        start=ms(start),
        stop=ms(stop),
    )


def _worst(outcomes: list[Outcome]) -> Outcome:
    for status in ("error", "failed"):
        for o in outcomes:
            if o.status == status:
                return o
    return Outcome("passed")


def _probe_steps(node: Symptom | None) -> list[TestStepResult]:
    out = []
    for child in node.children if node is not None else []:
        oc = Outcome("passed" if child.held else "failed")
        sub = _probe_steps(child)
        sub += [_step(s(e), Outcome("passed"), None, None) for e in child.evidence]
        out.append(
            _step(
                f"{'held' if child.held else 'not held'}: {s(child.probe)}",
                oc,
                None,
                None,
                steps=sub,
            )
        )
    return out


@dataclass(frozen=True)
class _Common:
    """Attachments several stories carry: written once, referenced from each result."""

    topo: Attachment | None
    reproduce_md: Attachment | None
    captures: list[Attachment | None]
    logs: list[Attachment | None]
    findings: Attachment | None = None  # the analyze phase's findings (findings.json)


def build_allure(run: Run, out: Path, topology_svg: Path | None) -> int:
    w = _Writer(run, out)
    # attached in this order: a file shows under the first name it is attached with
    topo = w.file(topology_svg.name, "topology.svg") if topology_svg else None
    artifacts = run.artifacts()
    captures = [w.file(rel, f"capture {label}") for g, label, rel in artifacts if g == "captures"]
    logs = [
        w.file(rel, f"{g}: {label}")
        for g, label, rel in artifacts
        if g not in ("captures", "run", "verify") and is_log(rel)
    ]
    reproduce_md = w.file("REPRODUCE.md") if (run.folder / "REPRODUCE.md").is_file() else None
    common = _Common(topo, reproduce_md, captures, logs, _findings(w))
    _setup_result(w, common)
    _configure_result(w)
    for p in run.attempts():
        _attempt_result(w, p, common)
    _verify_results(w)
    _collect_result(w, common)
    if not run.phases and run.model.model_fields_set:  # no phase yet: the run never started
        w.result(
            "run",
            "setup",
            Outcome("error", f"ERROR: run did not start ({run.verdict})"),
            run.model.started,
            run.model.ended,
        )
    return w.count


def _findings(w: _Writer) -> Attachment | None:
    """The run's findings, worst first, as one JSON attachment (none without any)."""
    rows = [
        {"where": f.where, **f.model_dump(mode="json", exclude_none=True)} for f in w.run.findings()
    ]
    return w.data("findings.json", rows, "findings")


def _setup_result(w: _Writer, common: _Common) -> None:
    """The infrastructure phases before configure, one step each, as the "setup" story."""
    run = w.run
    setup = [p for p in run.phases if p.phase in INFRA_PHASES or p.phase.startswith("up-")]
    if not setup and not run.model.model_fields_set:
        return
    w.result(
        "setup",
        "setup",
        _worst([phase_outcome(p) for p in setup]),
        setup[0].start if setup else None,
        setup[-1].end if setup else None,
        steps=[_setup_step(w, p) for p in setup],
        attachments=[common.topo],
        description="Build, preflight, bring-up, captures and impairments.",
    )


def _setup_step(w: _Writer, p: PhaseBase) -> TestStepResult:
    """One infrastructure phase: its images (build), nodes (up) or applied impairments."""
    params: dict[str, Any] = {}
    if isinstance(p, BuildPhase) and p.phase == "build":
        params = dict(p.images)
    nodes = [
        _step(
            f"node {n.name}",
            Outcome("passed"),
            None,
            None,
            params={
                "image": n.image,
                "ready_s": n.ready_s,
                **{f"address {k}": v for k, v in n.addresses.items()},
            },
        )
        for n in (p.nodes if isinstance(p, UpPhase) else [])
    ]
    applied = [
        _step(
            f"impair {s(a.node)} {s(a.network)}",
            Outcome("passed"),
            None,
            None,
            attachments=[
                w.text(
                    "commands",
                    "\n".join(s(c) for c in a.commands or []),
                    f"impair-{p.phase}-{i}",
                )
            ],
        )
        for i, a in enumerate(p.applied if isinstance(p, ImpairPhase) else [])
    ]
    return _step(p.phase, phase_outcome(p), p.start, p.end, steps=nodes + applied, params=params)


def _configure_result(w: _Writer) -> None:
    """The customer's configuration, one step per command or Ansible task."""
    configure = w.run.phase("configure")
    if configure is None:
        return
    items = configure_items(configure)
    steps = [
        _step(
            i.name,
            i.outcome,
            None,
            None,
            attachments=[w.text("output", i.output, f"configure-{n}")],
            params={"duration_s": round(i.duration, 3)},
        )
        for n, i in enumerate(items)
    ]
    w.result(
        "configure",
        "configure",
        _worst([i.outcome for i in items]),
        configure.start,
        configure.end,
        steps=steps,
        attachments=[w.file(rel) for rel in w.run.ansible_artifacts()],
        description="The customer's configuration: run commands and Ansible tasks.",
    )


def _attempt_result(w: _Writer, p: AttemptPhase, common: _Common) -> None:
    """One reproduce attempt: its steps, then the symptom probes as a tree."""
    run = w.run
    phase = p.phase
    steps = []
    for step in p.steps:
        text = step_output(step)
        steps.append(
            _step(
                f"{s(step.id, 'step')}: {s(step.description)}",
                step_outcome(step),
                step.start,
                step.end,
                attachments=[w.text("output", text, f"{phase}-{s(step.index)}")],
                params={"node": step.node, "kind": step.kind, "exit_code": step.exit_code},
            )
        )
    evidence = "\n".join(symptom_evidence(p.symptom))
    steps.append(
        _step(
            "symptom",
            Outcome("passed" if p.observed else "failed"),
            None,
            None,
            steps=_probe_steps(p.symptom),
            attachments=[w.text("evidence", evidence, f"{phase}-symptom")],
        )
    )
    w.result(
        phase,
        phase,
        attempt_outcome(run, p),
        p.start,
        p.end,
        steps=steps,
        attachments=[
            common.findings,
            common.topo,
            common.reproduce_md,
            *common.captures,
            *common.logs,
        ],
        description=f"Attempt {s(p.attempt)}: the scenario's steps, then the symptom "
        f"probes. Verdict of the run: {run.verdict} {run.rate_text}".rstrip(),
    )


def _verify_results(w: _Writer) -> None:
    """One result per verify check; the phase alone when it errored before any check."""
    run = w.run
    verify = run.phase("verify")
    for n, check in enumerate(run.checks()):
        full = s(check.name, f"check-{n + 1}")
        # A pytest node id (suite checks) shows as its test name, as allure-pytest does.
        name = full.rsplit("::", 1)[-1]
        w.result(
            name,
            "verify",
            check_outcome(check),
            verify.start if verify else None,
            verify.end if verify else None,
            attachments=[w.text("output", s(check.output), f"check-{n}")]
            + ([w.file("verify/verify-junit.xml")] if n == 0 else []),
            description=full if full != name else "",
            key=full,
        )
    if verify and phase_outcome(verify).status == "error" and not run.checks():
        w.result("verify", "verify", phase_outcome(verify), verify.start, verify.end)


def _collect_result(w: _Writer, common: _Common) -> None:
    """Evidence collection and teardown as the "collect" story."""
    teardown = [p for p in w.run.phases if p.phase in TEARDOWN_PHASES]
    if not teardown:
        return
    w.result(
        "collect",
        "collect",
        _worst([phase_outcome(p) for p in teardown]),
        teardown[0].start,
        teardown[-1].end,
        steps=[_teardown_step(w, p) for p in teardown],
        attachments=[common.findings, common.reproduce_md, *common.captures],
        description="Evidence collected (and read for findings), then teardown.",
    )


def _teardown_step(w: _Writer, p: PhaseBase) -> TestStepResult:
    """collect (node files, captures) or down (what was removed) as one step."""
    sub = []
    if isinstance(p, CollectPhase):
        for node, files in p.nodes.items():
            sub.append(
                _step(
                    f"node {node}",
                    Outcome("passed"),
                    None,
                    None,
                    attachments=[w.file(f"artifacts/{node}/{f}", f"{node}: {f}") for f in files],
                )
            )
    for cap in p.captures if isinstance(p, CollectPhase | CapturePhase) else []:
        rel = w.run.rel(cap.path)
        sub.append(
            _step(
                f"capture {s(cap.network)}",
                Outcome("passed"),
                None,
                None,
                attachments=[w.file(rel, f"capture {Path(rel).name}") if rel else None],
                params={k: getattr(cap, k) for k in ("packets", "bytes", "dropped", "warning")},
            )
        )
    removed = dict(p.removed) if isinstance(p, DownPhase) else {}
    return _step(p.phase, phase_outcome(p), p.start, p.end, steps=sub, params=removed)


def environment(run: Run) -> list[tuple[str, str]]:
    j = run.model
    env = [
        ("scenario", run.scenario),
        ("run", run.run_id),
        ("role", run.role),
        ("fix", run.fix),
        ("cell", run.cell),
        ("verdict", f"{run.verdict} {run.rate_text}".strip()),
        ("ticket", s(run.case.ticket)),
        ("customer", s(run.case.customer)),
        ("product_version", s(run.case.product_version)),
        ("engine", s(j.engine)),
        ("harness", s(j.harness)),
    ]
    for node, image in sorted(run.images().items()):
        env.append((f"image.{node}", image))
    for n in j.topology.nodes:
        if n.name and (n.os or n.image):
            env.append((f"os.{n.name}", n.os or n.image or ""))
    return [(k, v) for k, v in env if v]


def prop_escape(text: str, key: bool = False) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" or (key and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else "?")
        else:
            out.append(ch)
    return "".join(out)


def write_allure(run: Run, folder: Path, topology_svg: Path | None = None) -> Path:
    out = folder / RESULTS
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_allure(run, out, topology_svg)
    (out / "environment.properties").write_text(
        "".join(f"{prop_escape(k, True)}={prop_escape(v)}\n" for k, v in environment(run)),
        encoding="ascii",
    )
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=1), encoding="utf-8")
    return out
