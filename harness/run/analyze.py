"""The run's `analyze` phase: after collect, its own captures and node logs read as `lab
analyze RUN` reads them (harness.analysis), each source recorded relative to the run folder.

The pcaps are masked first (as the final sweep masks them), so what is read, and every sample
quoted from it, is what the folder keeps. Evidence, never the run's failure: a source that
cannot be read (tshark missing, a file tshark refuses) records why; a capture cut short keeps
the findings before the cut, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.analysis import inputs, tshark
from harness.analysis.read import read_task
from harness.errors import HarnessError
from harness.journal_model import AnalyzedSource
from harness.run.collect import mask_captures
from harness.run.redact import Redactor
from harness.scenario.catalog import Catalog

TIMEOUT = 60.0  # seconds tshark may take over one capture


def _failed(task: inputs.Task, rel: str, exc: HarnessError) -> AnalyzedSource:
    why = exc.message.removeprefix(f"{rel}: ")
    return AnalyzedSource(
        path=rel,
        kind=task.sniffed.kind,
        node=task.node,
        network=task.network,
        error=f"{why} ({exc.hint})" if exc.hint else why,
    )


def prewarm(captures: int) -> None:
    """tshark started ahead for the captures the run will read (harness.analysis.tshark)."""
    tshark.prewarm(captures)


def analyze_folder(
    folder: Path,
    catalog: Catalog,
    redactor: Redactor,
    *,
    timeout: float = TIMEOUT,
    stop: Callable[[], bool] = lambda: False,
) -> list[AnalyzedSource]:
    """Every capture and node log of the run folder, read once, with its findings; `stop`
    (a Ctrl-C while finishing) ends the reading early, keeping the sources read so far."""
    mask_captures(folder, redactor)
    out: list[AnalyzedSource] = []
    tasks = inputs.plan([str(folder)]).tasks
    tshark.prewarm(sum(t.sniffed.kind == "capture" for t in tasks))  # their start-ups at once
    for task in tasks:
        if stop():
            break
        rel = task.path.relative_to(folder).as_posix()
        try:
            src = read_task(
                task, catalog, redact=redactor.text, partial=True, timeout=timeout, name=rel
            )
        except HarnessError as exc:  # BadEvidence, or InfraError: tshark missing or broken
            out.append(_failed(task, rel, exc))
            continue
        out.append(AnalyzedSource.model_validate(src.model_dump()))
    return out
