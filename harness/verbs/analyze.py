"""`lab analyze PATH...`: findings in captures (tshark) and logs (the labs' signatures).

Exit 0 with findings or none; 2 when any path named is not readable evidence (every such
path is listed, none of them half read). A capture cut short is unreadable evidence unless
`partial`: then the findings before the cut are kept, with a warning on that source.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.analysis import capture, inputs, logmatch, tshark
from harness.analysis.evidence import BadEvidence, lines
from harness.findings_model import Source
from harness.run.redact import Redactor
from harness.scenario.catalog import Catalog, load_catalog
from harness.verbs.results import AnalyzeResult


def _capture(task: inputs.Task, redactor: Redactor, partial: bool, timeout: float) -> Source:
    read = tshark.read(task.path, timeout=timeout)
    warnings = []
    if read.error and not (read.truncated and partial):
        hint = "pass --partial to keep the findings before the cut" if read.truncated else None
        raise BadEvidence(f"{task.path}: not a readable capture: {read.error}", hint=hint)
    if read.error:
        warnings.append(f"cut short: findings are those of the {read.frames} frames before the cut")
    found = capture.findings(
        read.rows,
        tshark.value_names() if read.rows else {},
        source=str(task.path),
        network=task.network,
        redact=redactor.text,
    )
    return Source(
        path=str(task.path),
        kind="capture",
        network=task.network,
        units=read.frames,
        findings=found,
        warnings=warnings,
    )


def _log(task: inputs.Task, catalog: Catalog | None, redactor: Redactor) -> Source:
    rules = logmatch.rules_of(catalog, task.labs) if catalog else []
    rules = [r for r in rules if not task.in_node or r.applies_to(task.in_node)]
    scan = logmatch.scan(
        lines(task.path, task.sniffed.gzipped),
        rules,
        source=str(task.path),
        node=task.node,
        redact=redactor.text,
    )
    warnings = [] if catalog else ["no project found: no lab's log signatures to apply"]
    return Source(
        path=str(task.path),
        kind="log",
        node=task.node,
        labs=sorted({r.lab for r in rules}),
        units=scan.lines,
        findings=scan.findings,
        warnings=warnings,
    )


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
    for task in plan.tasks:
        try:
            if task.sniffed.kind == "capture":
                sources.append(_capture(task, redactor, partial, timeout))
            else:
                sources.append(_log(task, catalog, redactor))
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
