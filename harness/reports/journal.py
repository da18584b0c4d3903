"""The journal of a run as every report reads it: the typed model (harness.journal_model),
plus the facts derived from it that more than one report needs. A run killed at any moment
leaves a partial journal (docs/journal.md): the model makes every field optional, and a file
that is not a journal at all reads as an empty one, so reports say what is missing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import outcomes
from harness.journal_model import (
    AnalyzedFinding,
    AnalyzedSource,
    AnalyzePhase,
    AttemptPhase,
    BuildPhase,
    Capture,
    CapturePhase,
    Case,
    Check,
    CollectPhase,
    ConfigureItem,
    ConfigurePhase,
    IdempotencePhase,
    Journal,
    PhaseBase,
    Step,
    Symptom,
    UpPhase,
    VerifyPhase,
)
from harness.journal_model import load as load_journal

INFRA_PHASES = ("build", "preflight", "up", "capture", "impair")
TEARDOWN_PHASES = ("collect", "down")
FINDING_SEVERITIES = ("error", "warning", "info")  # the order findings are listed in
SEVERITY_NAMES = {1: "blocker", 2: "critical", 3: "normal", 4: "minor", 5: "trivial"}
ALLURE_SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")


def load(folder: Path) -> Journal:
    """The journal of a run folder; an empty journal when it is missing or unreadable."""
    return load_journal(folder / "journal.json")


def s(value: Any, default: str = "") -> str:
    """A journal value as report text: '' for none, true/false, numbers as written, JSON for
    a mapping or a list."""
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def num(value: float | None) -> float:
    return float(value) if value is not None else 0.0


def fmt_time(seconds: float | None) -> str:
    return f"{num(seconds):.3f}"


@dataclass
class Run:
    """The journal with the derived facts every report needs."""

    model: Journal
    folder: Path

    @property
    def phases(self) -> list[PhaseBase]:
        return list(self.model.phases)

    # -- identity -------------------------------------------------------------------------
    @property
    def scenario(self) -> str:
        return self.model.scenario or self.folder.parent.name or "run"

    @property
    def run_id(self) -> str:
        return self.model.run or self.folder.name

    @property
    def role(self) -> str:
        return self.model.role or self.model.verb or "reproduce"

    @property
    def fix(self) -> str:
        return self.model.fix or ""

    @property
    def verification(self) -> str:
        """The verify-fix this run is one side of ('' for a run of its own)."""
        return self.model.verification or ""

    @property
    def case(self) -> Case:
        return self.model.case

    @property
    def cell(self) -> str:
        """The matrix cell as `k=v,k=v` (or the label the run gave it); '' outside a matrix."""
        if self.model.cell:
            return self.model.cell
        cell = self.model.matrix_cell or {}
        return ",".join(f"{k}={s(v)}" for k, v in sorted(cell.items()))

    @property
    def label(self) -> str:
        """Scenario plus what tells this run apart in a merged report: cell, fix."""
        out = self.scenario
        if self.cell:
            out += f"[{self.cell}]"
        if self.fix:
            out += f"+{self.fix}"
        elif self.role in ("baseline", "candidate"):
            out += f"+{self.role}"
        return out

    @property
    def severity(self) -> str:
        """The case severity as an Allure severity name ('' when unknown)."""
        sev = self.case.severity
        if isinstance(sev, int):
            return SEVERITY_NAMES.get(sev, "")
        text = s(sev).lower()
        if text.isdigit():
            return SEVERITY_NAMES.get(int(text), "")
        return text if text in ALLURE_SEVERITIES else ""

    # -- outcome --------------------------------------------------------------------------
    @property
    def verdict(self) -> str:
        rep = self.model.reproduction
        v = (rep.verdict if rep else None) or self.model.result or ""
        return outcomes.recorded_verdict(v, bool(self.model.ended))

    @property
    def rate(self) -> str:
        rep = self.model.reproduction
        return (rep.rate if rep else None) or ""

    @property
    def rate_text(self) -> str:
        """k/n with its confidence interval (`3/10, 95% CI 11-60%`); a journal that recorded
        none (older than schema 1.3) gets it computed from its k and n."""
        rep = self.model.reproduction
        if rep is None:
            return ""
        if rep.interval is not None and rep.rate:
            return f"{rep.rate}, {rep.interval.text}"
        level = rep.interval.confidence if rep.interval else None
        return outcomes.rate_text(rep.observed, rep.attempts, level) or (rep.rate or "")

    @property
    def reason(self) -> str:
        rep = self.model.reproduction
        return (rep.reason if rep else None) or ""

    @property
    def interrupted(self) -> bool:
        return not self.model.ended or any(p.result == "interrupted" for p in self.phases)

    @property
    def hopes_absent(self) -> bool:
        return outcomes.hopes_absent(self.role)

    # -- phases ---------------------------------------------------------------------------
    def phase(self, name: str) -> PhaseBase | None:
        return self.model.phase(name)

    def attempts(self) -> list[AttemptPhase]:
        return [
            p for p in self.phases if isinstance(p, AttemptPhase) and p.phase.startswith("attempt-")
        ]

    def checks(self) -> list[Check]:
        if self.model.checks:
            return list(self.model.checks)
        verify = self.phase("verify")
        return list(verify.checks) if isinstance(verify, VerifyPhase) else []

    def addresses(self) -> dict[str, dict[str, str]]:
        """node -> network -> IPv4, from the last `up`/`up-N` phase, then static addresses."""
        out: dict[str, dict[str, str]] = {}
        for node in self.model.topology.nodes:
            for link in node.networks:
                ip = link.ipv4 or link.address
                if ip and link.network:
                    out.setdefault(node.name, {})[link.network] = ip
        for p in self.phases:
            if isinstance(p, UpPhase) and (p.phase == "up" or p.phase.startswith("up-")):
                for up in p.nodes:
                    for net, addr in up.addresses.items():
                        if addr:
                            out.setdefault(up.name, {})[net] = addr
        return out

    def images(self) -> dict[str, str]:
        build = self.phase("build")
        out = dict(build.images) if isinstance(build, BuildPhase) else {}
        up = self.phase("up")
        for node in up.nodes if isinstance(up, UpPhase) else []:
            if node.name and node.image:
                out.setdefault(node.name, node.image)
        return out

    def analyzed(self) -> list[AnalyzedSource]:
        """The sources the `analyze` phase read (schema 1.6), [] when it did not run."""
        phase = self.phase("analyze")
        return list(phase.sources) if isinstance(phase, AnalyzePhase) else []

    def findings(self) -> list[AnalyzedFinding]:
        """Every finding of the run's own evidence: errors, then warnings, then info, each
        by count (most first), then signature and where, so the order is the same each time."""
        found = [f for src in self.analyzed() for f in src.findings]
        return sorted(
            found,
            key=lambda f: (FINDING_SEVERITIES.index(f.severity), -f.count, f.signature, f.where),
        )

    # -- files ----------------------------------------------------------------------------
    def rel(self, path: str | None) -> str | None:
        """A path the journal names, relative to the run folder, if it lies inside it."""
        if not path:
            return None
        p = Path(path)
        if not p.is_absolute():
            return p.as_posix()
        try:
            return p.relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            pass
        # The folder may have moved (copied, or the journal came from elsewhere): keep the
        # part from a known top-level folder on.
        parts = p.parts
        for top in ("artifacts", "captures", "verify"):
            if top in parts:
                return Path(*parts[parts.index(top) :]).as_posix()
        return None

    def artifacts(self) -> list[tuple[str, str, str]]:
        """(group, label, path relative to the folder) for every collected file that exists:
        node files from the collect phase, captures, REPRODUCE.md, verify suites' output."""
        out: list[tuple[str, str, str]] = []
        seen: set[str] = set()

        def add(group: str, label: str, rel: str | None) -> None:
            if rel and rel not in seen and (self.folder / rel).is_file():
                seen.add(rel)
                out.append((group, label, rel))

        collect = self.phase("collect")
        capture = self.phase("capture")
        captures: list[Capture] = []
        if isinstance(collect, CollectPhase):
            for node, files in collect.nodes.items():
                for f in files:
                    add(node, f, f"artifacts/{node}/{f}")
            captures += collect.captures
        if isinstance(capture, CapturePhase):
            captures += capture.captures
        for cap in captures:
            rel = self.rel(cap.path)
            add("captures", rel.split("/")[-1] if rel else "", rel)
        add("run", "REPRODUCE.md", "REPRODUCE.md")
        add("run", "REPRODUCE-inventory.yml", "REPRODUCE-inventory.yml")
        add("verify", "verify-junit.xml", "verify/verify-junit.xml")
        # Node folders written before teardown even when collect did not run (docs/runs.md).
        art = self.folder / "artifacts"
        if art.is_dir():
            for node_dir in sorted(p for p in art.iterdir() if p.is_dir()):
                for name in ("container.log", "inspect.json"):
                    add(node_dir.name, name, f"artifacts/{node_dir.name}/{name}")
        return out

    def ansible_artifacts(self) -> list[str]:
        out: list[str] = []
        configure = self.phase("configure")
        for item in configure.items if isinstance(configure, ConfigurePhase) else []:
            rel = self.rel(item.artifacts)
            if rel:
                for name in ("stdout", "stderr"):
                    if (self.folder / rel / name).is_file():
                        out.append(f"{rel}/{name}")
        return out


def finding_counts(run: Run) -> dict[str, int]:
    """signature -> how often the run's evidence showed it (all sources), by signature."""
    counts: dict[str, int] = {}
    for f in run.findings():
        counts[f.signature] = counts.get(f.signature, 0) + f.count
    return dict(sorted(counts.items()))


def is_log(rel: str) -> bool:
    return rel.endswith((".log", "/stdout", "/stderr")) or "/log/" in rel


def relpath(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


# -- outcomes shared by the JUnit and Allure writers ---------------------------------------
# status: passed | failed | skipped | error. `error` is an infrastructure error (the verdict
# would be ERROR: the run could not do what it meant to); `failed` is a product failure.


@dataclass
class Outcome:
    status: str
    message: str = ""
    detail: str = ""


def symptom_evidence(symptom: Symptom | None, depth: int = 0) -> list[str]:
    """The probe tree as indented lines: `[held] probe`, then its evidence."""
    if symptom is None:
        return []
    pad = "  " * depth
    mark = "held" if symptom.held else "not held"
    lines = [f"{pad}[{mark}] {s(symptom.probe, 'symptom')}"]
    lines += [f"{pad}  - {s(e)}" for e in symptom.evidence]
    for child in symptom.children:
        lines += symptom_evidence(child, depth + 1)
    return lines


def attempt_outcome(run: Run, attempt: PhaseBase) -> Outcome:
    """Whether this attempt went as the run hoped.

    reproduce/baseline/cell hope to observe the symptom; a candidate hopes it is absent.
    An attempt that could not run is an error. An attempt where the symptom was absent in a
    run that still reproduced it (k of n, intermittent) is skipped, not failed: the verdict
    REPRODUCED k/n is what CI should go by.
    """
    symptom = attempt.symptom if isinstance(attempt, AttemptPhase) else None
    evidence = "\n".join(symptom_evidence(symptom))
    result = attempt.result or ""
    if attempt.error or result in ("error", "interrupted"):
        msg = attempt.error or f"attempt {result or 'did not finish'}"
        return Outcome("error", f"ERROR: {msg}", evidence)
    observed = attempt.observed if isinstance(attempt, AttemptPhase) else None
    if observed is None:
        observed = result == "observed"
    if not attempt.end and result not in ("observed", "absent"):
        return Outcome("error", "ERROR: attempt did not finish (run interrupted)", evidence)
    if outcomes.attempt_as_hoped(run.role, bool(observed)):
        return Outcome("passed", "symptom observed" if observed else "symptom absent", evidence)
    if run.hopes_absent:
        return Outcome("failed", "symptom observed: the fix did not remove it", evidence)
    if run.verdict == outcomes.REPRODUCED:
        return Outcome(
            "skipped",
            f"symptom absent in this attempt (intermittent: reproduced {run.rate} overall)",
            evidence,
        )
    return Outcome("failed", "symptom absent: not reproduced in this attempt", evidence)


def step_outcome(step: Step) -> Outcome:
    if step.error:
        return Outcome("error", f"ERROR: {step.error}")
    if not step.end and not step.background:
        return Outcome("error", "ERROR: step did not finish (run interrupted)")
    return Outcome("passed")


def step_output(step: Step) -> str:
    parts: list[str] = []
    if step.command:
        parts.append(f"$ {step.command}")
    for key in ("condition", "status", "exit_code", "timed_out"):
        value = getattr(step, key)
        if value is not None:
            parts.append(f"{key}: {s(value)}")
    if step.fault:
        parts.append(f"fault: {s(step.fault)}")
    for key in ("stdout", "stderr"):
        text = getattr(step, key)
        if text:
            parts.append(f"--- {key}\n{text.rstrip()}")
    if step.error:
        parts.append(f"error: {step.error}")
    return "\n".join(parts)


def check_outcome(check: Check) -> Outcome:
    """Command checks carry passed/exit_code/expected/output; pytest suites' checks carry
    passed/outcome/message. `error` (either form) is infrastructure, a failed check a product
    failure."""
    outcome = (check.outcome or "").lower()
    message = check.message or ""
    detail = check.output or ""
    if check.error or outcome in ("error", "broken"):
        return Outcome("error", f"ERROR: {check.error or message or 'check errored'}", detail)
    if outcome in ("skipped", "xfailed", "deselected"):
        return Outcome("skipped", message or outcome, detail)
    if check.passed is True or outcome in ("passed", "xpassed"):
        return Outcome("passed", message, detail)
    if not message and "exit_code" in check.model_fields_set:
        message = f"exit code {s(check.exit_code)} (expected {s(check.expected)})"
    return Outcome("failed", message or "check failed", detail)


@dataclass
class Item:
    """One configure unit: an Ansible task on a host, or a `run:` command on a node."""

    name: str
    outcome: Outcome
    duration: float
    output: str


def _playbook_items(item: ConfigureItem, n: int) -> list[Item]:
    out: list[Item] = []
    book = Path(item.playbook or "").name or f"playbook-{n}"
    for t in item.tasks:
        status = t.status or ""
        name = f"{book}: {s(t.task)} [{s(t.host)}]"
        text = "\n".join(
            f"{k}: {s(getattr(t, k))}"
            for k in ("action", "changed", "rc", "msg", "stdout", "stderr")
            if getattr(t, k) not in (None, "")
        )
        if status in ("failed", "unreachable") and not t.ignored:
            oc = Outcome("error", f"ERROR: task {status}: {s(t.msg)}".rstrip(": "))
        elif status == "skipped":
            oc = Outcome("skipped", "task skipped")
        else:
            oc = Outcome("passed")
        out.append(Item(name, oc, num(t.duration), text))
    bad = item.error or (item.ok is False) or item.status in ("failed", "timeout", "canceled")
    if bad and not any(i.outcome.status == "error" for i in out):
        msg = item.error or f"playbook {s(item.status)} rc={s(item.rc)}"
        out.append(
            Item(book, Outcome("error", f"ERROR: {msg}"), num(item.duration), s(item.command))
        )
    elif not item.tasks:
        out.append(Item(book, Outcome("passed"), num(item.duration), s(item.command)))
    return out


def _run_items(item: ConfigureItem, n: int) -> list[Item]:
    out: list[Item] = []
    command = item.run or item.command or f"item-{n}"
    for r in item.results:
        text = "\n".join(
            x
            for x in (
                f"$ {command}",
                f"exit_code: {s(r.exit_code)}",
                (r.stdout or "").rstrip(),
                (r.stderr or "").rstrip(),
            )
            if x
        )
        if r.error or (r.exit_code not in (0, None)):
            oc = Outcome("error", f"ERROR: {r.error or f'exit code {s(r.exit_code)}'}")
        else:
            oc = Outcome("passed")
        out.append(Item(f"{s(r.node)}$ {command}", oc, num(r.duration_s), text))
    if not item.results:
        oc = Outcome("error", f"ERROR: {item.error}") if item.error else Outcome("passed")
        out.append(Item(f"$ {command}", oc, 0.0, ""))
    return out


def configure_items(phase: PhaseBase) -> list[Item]:
    out: list[Item] = []
    items = phase.items if isinstance(phase, ConfigurePhase) else []
    for n, item in enumerate(items, 1):
        if "playbook" in item.model_fields_set:
            out += _playbook_items(item, n)
        else:
            out += _run_items(item, n)
    if phase.result in ("error", "interrupted") and not any(
        i.outcome.status == "error" for i in out
    ):
        message = f"ERROR: {phase.error or phase.result}"
        out.append(Item("configure", Outcome("error", message), 0.0, ""))
    return out


def idempotence_lines(phase: PhaseBase | None) -> list[str] | None:
    """The tasks the idempotence pass changed (`playbook: task on host`), [] when none did;
    None when the run had no idempotence pass."""
    if not isinstance(phase, IdempotencePhase):
        return None
    return [f"{c.playbook}: {c.task} on {c.host}" for c in phase.changed]


def phase_outcome(phase: PhaseBase) -> Outcome:
    result = phase.result or ""
    if result in ("error", "interrupted") or phase.error:
        return Outcome("error", f"ERROR: {phase.error or result}")
    if not phase.end:
        return Outcome("error", "ERROR: phase did not finish (run interrupted)")
    return Outcome("passed")
