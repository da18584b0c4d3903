"""`lab analyze PATH...`: findings in captures (tshark) and logs (the labs' signatures).

Exit 0 with findings or none; 2 when any path named is not readable evidence (every such
path is listed, none of them half read). A capture cut short is unreadable evidence unless
`partial`: then the findings before the cut are kept, with a warning on that source.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.analysis import inputs, tshark
from harness.analysis.evidence import BadEvidence
from harness.analysis.read import read_task
from harness.findings_model import Source
from harness.run.redact import Redactor
from harness.scenario.catalog import load_catalog
from harness.verbs.results import AnalyzeResult


def analyze(
    paths: list[str],
    *,
    root: Path | None,
    partial: bool = False,
    timeout: float = 120.0,
) -> AnalyzeResult:
    """Every finding in `paths`, by source; BadEvidence (exit 2) naming each unreadable one."""
    catalog = load_catalog(root) if root is not None else None
    plan = inputs.plan(paths)
    redactor = Redactor()
    problems = list(plan.problems)
    sources: list[Source] = []
    tshark.prewarm(sum(t.sniffed.kind == "capture" for t in plan.tasks))  # start-ups at once
    for task in plan.tasks:
        try:
            source = read_task(
                task, catalog, redact=redactor.text, partial=partial, timeout=timeout
            )
            sources.append(source)
        except BadEvidence as exc:
            problems.append(str(exc))
    if problems:
        raise BadEvidence("\n".join(problems))
    totals: Counter[str] = Counter()
    for s in sources:
        for f in s.findings:
            totals[f.signature] += f.count
    return AnalyzeResult(
        paths=paths,
        sources=sources,
        skipped=plan.skipped,
        findings=sum(len(s.findings) for s in sources),
        signatures=dict(sorted(totals.items())),
    )
