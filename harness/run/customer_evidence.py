"""The customer's own evidence (`evidence:` in the scenario): read before anything is built,
with the same readers as the run's own (harness/analysis/read.py), and compared after the
run's `analyze` phase: each error or warning signature of the customer's files, and whether the
lab showed it. Bad evidence (not a capture tshark reads, a binary log) is a UsageError (exit 2)
before a folder or a container exists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.analysis import inputs
from harness.analysis.read import read_task
from harness.errors import UsageError
from harness.journal_model import AnalyzedSource, EvidenceMatch
from harness.run.redact import Redactor
from harness.scenario.catalog import Catalog
from harness.scenario.schema import EvidenceFile, Scenario

TIMEOUT = 60.0  # seconds tshark may take over one of the customer's captures


def read_evidence(
    raw: Scenario, root: Path, catalog: Catalog, redactor: Redactor
) -> list[AnalyzedSource]:
    """Every file `evidence:` lists, with its findings (paths as the scenario gives them)."""
    out: list[AnalyzedSource] = []
    for item in raw.evidence:
        entry = item if isinstance(item, EvidenceFile) else EvidenceFile(file=item)
        plan = inputs.plan([str(root / entry.file)])
        if plan.problems or not plan.tasks:
            why = "; ".join(plan.problems) or "not a capture or a log"
            raise UsageError(
                f"evidence {entry.file}: {why}",
                hint="`lab analyze FILE` says what it reads; give the customer's pcap or log",
            )
        for task in plan.tasks:
            if entry.lab:
                task = dataclasses.replace(task, labs=(entry.lab,))
            src = read_task(
                task,
                catalog,
                redact=redactor.text,
                partial=False,
                timeout=TIMEOUT,
                name=entry.file,
            )  # BadEvidence (a UsageError) when it is not readable evidence
            out.append(AnalyzedSource.model_validate(src.model_dump()))
    return out


def compare(customer: list[AnalyzedSource], lab: list[AnalyzedSource]) -> EvidenceMatch:
    """The customer's error and warning signatures, split by whether the lab showed them."""
    wanted = sorted({f.signature for s in customer for f in s.findings if f.severity != "info"})
    shown_by_lab = {f.signature for s in lab for f in s.findings}
    return EvidenceMatch(
        signatures=wanted,
        shown=[s for s in wanted if s in shown_by_lab],
        missing=[s for s in wanted if s not in shown_by_lab],
    )
