"""One evidence file read into a Source: a capture through tshark, a log through the labs'
signatures. Shared by `lab analyze` (harness/verbs/analyze.py) and the run's own `analyze`
phase (harness/run/analyze.py), so both read a file the same way; `name` is what the source
and its findings are called (the path as given, or relative to a run folder)."""

from __future__ import annotations

from collections.abc import Callable

from harness.analysis import capture, logmatch, tshark
from harness.analysis.evidence import BadEvidence, lines
from harness.analysis.inputs import Task
from harness.findings_model import Source
from harness.scenario.catalog import Catalog

Redact = Callable[[str], str]


def read_capture(
    task: Task, *, redact: Redact, partial: bool, timeout: float, name: str | None = None
) -> Source:
    """The capture's findings; BadEvidence when tshark cannot read it (a cut capture too,
    unless `partial`: then the findings before the cut, with a warning)."""
    name = name or str(task.path)
    read = tshark.read(task.path, timeout=timeout)
    warnings = []
    if read.error and not (read.truncated and partial):
        hint = "pass --partial to keep the findings before the cut" if read.truncated else None
        raise BadEvidence(f"{name}: not a readable capture: {read.error}", hint=hint)
    if read.error:
        warnings.append(f"cut short: findings are those of the {read.frames} frames before the cut")
    found = capture.findings(
        read.rows,
        tshark.value_names() if read.rows else {},
        source=name,
        network=task.network,
        redact=redact,
    )
    return Source(
        path=name,
        kind="capture",
        network=task.network,
        units=read.frames,
        findings=found,
        warnings=warnings,
    )


def read_log(
    task: Task, catalog: Catalog | None, *, redact: Redact, name: str | None = None
) -> Source:
    """The log's findings with the signatures of its node's lab (every lab's when unknown)."""
    name = name or str(task.path)
    rules = logmatch.rules_of(catalog, task.labs) if catalog else []
    rules = [r for r in rules if not task.in_node or r.applies_to(task.in_node)]
    scan = logmatch.scan(
        lines(task.path, task.sniffed.gzipped), rules, source=name, node=task.node, redact=redact
    )
    warnings = [] if catalog else ["no project found: no lab's log signatures to apply"]
    return Source(
        path=name,
        kind="log",
        node=task.node,
        labs=sorted({r.lab for r in rules}),
        units=scan.lines,
        findings=scan.findings,
        warnings=warnings,
    )


def read_task(
    task: Task,
    catalog: Catalog | None,
    *,
    redact: Redact,
    partial: bool = False,
    timeout: float = 120.0,
    name: str | None = None,
) -> Source:
    """A capture or a log, by what its bytes are."""
    if task.sniffed.kind == "capture":
        return read_capture(task, redact=redact, partial=partial, timeout=timeout, name=name)
    return read_log(task, catalog, redact=redact, name=name)
