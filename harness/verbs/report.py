"""`lab report RUN`: regenerate every report of a run (junit.xml, allure-results/,
topology.svg, report.html, REPRODUCE.md) from its journal.json alone; given a verification
(`verify-<id>`, its folder or verification.json), its report.html, junit.xml and
allure-results/ from verification.json and the two runs' journals."""

from __future__ import annotations

from pathlib import Path

from harness.reports import write_reports
from harness.reports.verification import write_verification_reports
from harness.run.folder import only_one, reports_root
from harness.verbs.results import ReportResult
from harness.verbs.verification import find_verification_folder


def find_run_folder(run: str, root: Path) -> Path:
    """A run folder from a path, or a run id (or unique prefix) under the reports root
    ($LABHARNESS_REPORTS or <project>/reports, as `<scenario>/<run-id>`)."""
    path = Path(run)
    if (path / "journal.json").is_file():
        return path
    if path.name == "journal.json" and path.is_file():
        return path.parent
    base = reports_root(root)
    exact = sorted(p for p in base.glob(f"*/{run}") if (p / "journal.json").is_file())
    if len(exact) == 1:
        return exact[0]
    found = exact or sorted(
        p for p in base.glob("*/*") if p.name.startswith(run) and (p / "journal.json").is_file()
    )
    return only_one(
        found,
        none=f"no run {run!r}: not a folder with a journal.json, nor a run id under {base}",
        hint="give the run folder, or a run id as `lab reproduce` printed it",
        what=f"run {run!r}",
    )


def report(run: str, *, root: Path | None = None) -> ReportResult:
    """Regenerate the reports of `run` (or of a verification): which were written where, and
    what could not be."""
    verification = find_verification_folder(run, root or Path.cwd())
    if verification is not None:
        done = write_verification_reports(verification)
        return ReportResult(
            run=verification.name,
            folder=str(verification),
            reports=done.written(),
            errors="; ".join(done.errors) or None,
        )
    folder = find_run_folder(run, root or Path.cwd())
    written = write_reports(folder)
    errors = written.pop("errors", None)
    return ReportResult(run=folder.name, folder=str(folder), reports=written, errors=errors)
