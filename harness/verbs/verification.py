"""A verification as a result of its own: `lab verify-fix` writes
`<reports>/<scenario>/verify-<id>/` beside the two runs, so the verdict on a fix (not each side's
REPRODUCED / NOT_REPRODUCED) is what a report, a ticket and a replay read. The folder holds
verification.json (harness/verification_model.py) and the reports built from it."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from harness import __version__
from harness import verification_model as vm
from harness.journal_model import Case, Check
from harness.reports.verification import VerificationReports, write_verification_reports
from harness.run.folder import now_iso, only_one, reports_root
from harness.run.ids import new_run_id
from harness.run.redact import for_scenarios
from harness.run.result import RunResult
from harness.scenario.diff import changed_keys, scenario_diff
from harness.scenario.load import LoadedScenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenVerification:
    """The verification folder and its reports (what was written, what could not be)."""

    folder: Path
    reports: VerificationReports


def new_verification_id() -> str:
    return vm.PREFIX + new_run_id()


def _side(r: RunResult, role: str, folder: Path) -> vm.Side:
    return vm.Side.model_validate(
        {
            "role": role,
            "run": r.run,
            "folder": os.path.relpath(r.folder, folder) if r.folder else "",
            "fix": r.fix,
            "verdict": r.verdict,
            "observed": r.observed,
            "attempts": r.attempts,
            "planned": r.planned,
            "rate": r.rate,
            "interval": r.interval.model_dump() if r.interval else None,
            "reason": r.reason,
            "checks": [Check.model_validate(c) for c in r.checks],
            "checks_green": r.checks_green,
            "started": _journal_field(r.folder, "started"),
            "ended": _journal_field(r.folder, "ended"),
            "error": r.error,
        }
    )


def _journal_field(folder: str, key: str) -> str | None:
    try:
        value = json.loads((Path(folder) / "journal.json").read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def _overlay(base: LoadedScenario, cand: LoadedScenario, fix_file: Path | None) -> vm.Overlay:
    import yaml

    fix_def = cand.raw.fixes.get(cand.fix or "")
    definition = (
        yaml.safe_dump(
            fix_def.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            sort_keys=False,
            width=100,
        )
        if fix_def
        else ""
    )
    return vm.Overlay(
        fix=cand.fix,
        kind=fix_def.kind if fix_def else None,
        description=" ".join(fix_def.description.split())
        if fix_def and fix_def.description
        else None,
        fix_file=str(fix_file) if fix_file else None,
        definition=definition,
        diff=scenario_diff(base.raw, cand.raw, names=("baseline", f"candidate ({cand.fix})")),
        changed=changed_keys(base.raw, cand.raw),
    )


def write_verification(
    *,
    root: Path,
    vid: str,
    started: str,
    base: LoadedScenario,
    cand: LoadedScenario,
    fix_file: Path | None,
    baseline: RunResult,
    candidate: RunResult,
    verdict: str,
    reason: str,
    why: list[str],
    exit_code: int,
) -> WrittenVerification:
    """The verification folder: verification.json (redacted like the runs: both variants'
    secrets and `redact:` patterns), written then renamed, then its reports; a report that
    fails is recorded in `reports.errors`, the verification.json (the verdict) stays."""
    folder = reports_root(root) / baseline.scenario / vid
    folder.mkdir(parents=True, exist_ok=True)
    raw_case = base.raw.case.model_dump() if base.raw.case else {}
    doc = vm.Verification(
        id=vid,
        scenario=baseline.scenario,
        title=base.raw.title,
        source=_journal_field(baseline.folder, "source"),
        case=Case.model_validate(raw_case),
        params={k: v for k, v in base.params.items()},
        harness=__version__,
        started=started,
        ended=now_iso(),
        confidence=base.raw.reproduce.confidence if base.raw.reproduce else None,
        verdict=verdict,
        reason=reason,
        why=why,
        exit_code=exit_code,
        overlay=_overlay(base, cand, fix_file),
        baseline=_side(baseline, "baseline", folder),
        candidate=_side(candidate, "candidate", folder),
    )
    redactor = for_scenarios([base, cand])
    data = redactor.deep(doc.model_dump(mode="json"))
    tmp = folder / f".{vm.FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / vm.FILE)
    try:
        reports = write_verification_reports(folder)
    except Exception as exc:  # it never raises; if it ever did, the verdict is already written
        log.warning("verification reports not written for %s: %s", folder, exc, exc_info=True)
        reports = VerificationReports(folder=str(folder), errors=[f"reports: {exc}"])
    from harness.store.record import index_folder

    index_folder(reports_root(root), folder)  # the results store (lab serve)
    return WrittenVerification(folder, reports)


def find_verification_folder(vid: str, root: Path) -> Path | None:
    """A verification folder from a path, or an id (or unique prefix) under the reports root;
    None when `vid` names no verification (it may be a run)."""
    path = Path(vid)
    if (path / vm.FILE).is_file():
        return path
    if path.name == vm.FILE and path.is_file():
        return path.parent
    if not vm.is_verification_id(path.name):
        return None
    base = reports_root(root)
    found = sorted(p.parent for p in base.glob(f"*/{vid}*/{vm.FILE}"))
    exact = [p for p in found if p.name == vid]
    return only_one(
        exact if len(exact) == 1 else found,
        none=f"no verification {vid!r} under {base}",
        hint="give the verification folder, or its id as `lab verify-fix` printed it",
        what=f"verification {vid!r}",
    )
