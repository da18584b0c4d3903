"""Reports of a run, built from its journal.json alone (layer 4: an outside system).

`write_reports(folder)` writes REPRODUCE.md, junit.xml, allure-results/, topology.svg and
report.html into the run folder, overwriting what is there; it never raises on a partial
journal (an interrupted run): what is missing is reported as missing. See docs/reports.md."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from harness.reports.allure import write_allure
from harness.reports.html import write_html
from harness.reports.journal import Run, load
from harness.reports.junit import merge_junit, write_junit
from harness.reports.manual import write_manual
from harness.reports.topology import write_svg

__all__ = ["merge_junit", "merge_runs", "write_reports"]

log = logging.getLogger(__name__)


def write_reports(folder: Path) -> dict[str, str]:
    """Write every report of the run in `folder` from its journal.json; name -> path.

    A report that cannot be written (a disk error, a bug meeting an odd journal) is logged
    and left out of the answer (its key maps to the error under `errors`); the others are
    still written. Never raises.
    """
    folder = Path(folder)
    run = Run(load(folder), folder)
    written: dict[str, str] = {}
    errors: list[str] = []
    svg: Path | None = None
    steps: tuple[tuple[str, Callable[[], Path]], ...] = (
        ("manual", lambda: write_manual(run.model, folder)),  # first: the others link to it
        ("topology", lambda: write_svg(run, folder)),
        ("junit", lambda: write_junit(run, folder)),
        ("allure", lambda: write_allure(run, folder, svg)),
        ("html", lambda: write_html(run, folder)),
    )
    for name, make in steps:
        try:
            path = make()
        except Exception as exc:  # a report must never fail the run that produced it
            log.warning("report %s not written for %s: %s", name, folder, exc, exc_info=True)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        written[name] = str(path)
        if name == "topology":
            svg = path
    if errors:
        written["errors"] = "; ".join(errors)
    return written


def merge_runs(folders: list[Path], out: Path, name: str | None = None) -> Path:
    """One JUnit file for several runs (verify-fix: baseline and candidate; a matrix: its
    cells), written to `out`; a run without junit.xml gets its reports written first."""
    files = []
    for folder in folders:
        path = Path(folder) / "junit.xml"
        if not path.is_file():
            write_reports(Path(folder))
        files.append(path)
    return merge_junit(files, out, name)
