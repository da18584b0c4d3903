"""`lab reproduce` and `lab verify-fix`: runs composed into a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import outcomes
from harness.engine.api import Engine
from harness.errors import UsageError
from harness.run import live
from harness.run.execute import RunOptions, run_scenario
from harness.run.folder import now_iso
from harness.run.live import LiveLab
from harness.run.provision import OnEvent, _quiet
from harness.run.result import RunResult
from harness.run.trust import Trust, enforce
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.verbs.results import ReproduceResult, VerifyFixResult
from harness.verbs.verification import new_verification_id, write_verification
from harness.verbs.why import fix_lines


def pick_cell(scenario: Path, wanted: dict[str, str]) -> dict[str, Any]:
    """The matrix cell whose values read as `wanted` (AXIS=VALUE from the command line)."""
    from harness.scenario.matrix import cell_label, expand
    from harness.verbs.matrix import raw_matrix

    cells = expand(raw_matrix(scenario))
    hits = [c for c in cells if all(str(c.get(k)) == v for k, v in wanted.items())]
    if len(hits) != 1:
        labels = ", ".join(cell_label(c) for c in cells[:8])
        what = "no cell" if not hits else f"{len(hits)} cells"
        raise UsageError(f"--cell {wanted}: {what} of {scenario} match (cells: {labels} ...)")
    return hits[0]


def _load(
    scenario: Path,
    root: Path,
    params: dict[str, str] | None,
    *,
    fix: str | None = None,
    fix_file: Path | None = None,
    cell: dict[str, str] | None = None,
    catalog: Catalog | None = None,
) -> LoadedScenario:
    catalog = catalog if catalog is not None else load_catalog(root)
    loaded = load_scenario(
        scenario,
        root=root,
        catalog=catalog,
        params=params,
        fix=fix,
        fix_file=fix_file,
        cell=pick_cell(scenario, cell) if cell else None,
    )
    if loaded.raw.reproduce is None or not loaded.raw.reproduce.steps:
        raise UsageError(
            f"{scenario}: no `reproduce:` steps: there is nothing to replay",
            hint="add reproduce.steps and reproduce.symptom (docs/scenario-format.md)",
        )
    if not loaded.raw.reproduce.symptom:
        raise UsageError(
            f"{scenario}: no `reproduce.symptom`: there is nothing to observe",
            hint="write the customer's symptom as probes on the steps' results",
        )
    return loaded


def _live(on: str | None, loaded: LoadedScenario) -> tuple[Engine | None, LiveLab | None]:
    """`--on RUN`: the engine and the live lab to rerun on (None, None: a fresh lab)."""
    if on is None:
        return None, None
    from harness.engine.connection import connect_engine
    from harness.verbs.runs import find_live

    engine = connect_engine()
    return engine, find_live(engine, on, loaded.topology.scenario)


def reproduce(
    scenario: Path,
    *,
    root: Path,
    params: dict[str, str] | None = None,
    fix: str | None = None,
    fix_file: Path | None = None,
    destroy: str = "passing",
    on_event: OnEvent = _quiet,
    cell: dict[str, str] | None = None,
    untrusted: bool = False,
    trust: bool = False,
    on: str | None = None,
    catalog: Catalog | None = None,
) -> ReproduceResult:
    """One run of the scenario. `untrusted`: the file came from someone else (harness/run/
    trust.py: no playbooks or suites on this machine, default capabilities), unless `trust`.
    `on`: a lab that is up (`lab up`, a kept run): brought in line with the file, then the
    steps rerun on it (harness/run/live.py); the lab stays up. `catalog`: the labs as the
    caller read them (read once per command: every lab.yaml is parsed)."""
    catalog = catalog if catalog is not None else load_catalog(root)
    loaded = _load(scenario, root, params, fix=fix, fix_file=fix_file, cell=cell, catalog=catalog)
    level = Trust.of(untrusted=untrusted, trust=trust)
    label = ",".join(f"{k}={v}" for k, v in loaded.matrix_cell.items()) if cell else None
    engine, lab = _live(on, loaded)
    result = run_scenario(
        loaded,
        root=root,
        catalog=catalog,
        opts=RunOptions(
            destroy=destroy,
            role="cell" if cell else "reproduce",
            cell=label,
            on_event=on_event,
            fix_file=str(fix_file) if fix_file else None,
            trust=level,
            live=lab,
        ),
        engine=engine,
    )
    return ReproduceResult(
        **dict(result), exit_code=outcomes.exit_code("reproduce", result.verdict)
    )


def verify_fix(
    scenario: Path,
    *,
    root: Path,
    fix: str | None,
    fix_file: Path | None = None,
    params: dict[str, str] | None = None,
    destroy: str = "passing",
    on_event: OnEvent = _quiet,
    untrusted: bool = False,
    trust: bool = False,
    on: str | None = None,
) -> VerifyFixResult:
    """The baseline and the candidate, each on a fresh topology, then one verdict. `on`: both
    on that live lab instead, one after the other (the candidate's overlay applied live)."""
    if fix is None and fix_file is None:
        raise UsageError("verify-fix needs --fix NAME (or --fix-file FILE)")
    catalog = load_catalog(root)
    baseline_loaded = _load(scenario, root, params, catalog=catalog)
    # a bad fix fails here, before either run
    candidate_loaded = _load(scenario, root, params, fix=fix, fix_file=fix_file, catalog=catalog)
    return verify_loaded(
        baseline_loaded,
        candidate_loaded,
        root=root,
        level=Trust.of(untrusted=untrusted, trust=trust),
        fix_file=fix_file,
        destroy=destroy,
        on_event=on_event,
        on=on,
    )


def verify_loaded(
    baseline_loaded: LoadedScenario,
    candidate_loaded: LoadedScenario,
    *,
    root: Path,
    level: Trust,
    fix_file: Path | None,
    destroy: str,
    on_event: OnEvent,
    on: str | None = None,
) -> VerifyFixResult:
    """verify-fix of two loaded variants (also what `lab replay` of a verification runs):
    both checked against the trust level before either runs, then baseline, candidate, the
    verdict and the verification folder."""
    fix_text = str(fix_file) if fix_file else None
    enforce(baseline_loaded, baseline_loaded.topology, level)  # both sides, before either runs
    enforce(candidate_loaded, candidate_loaded.topology, level, fix_text)
    catalog = load_catalog(root)
    vid, started = new_verification_id(), now_iso()
    engine, lab = _live(on, baseline_loaded)
    recorded = (
        live.recorded_baseline(lab, live.key_now(baseline_loaded, root, catalog)) if lab else None
    )
    if recorded is not None:  # the lab already ran exactly this baseline: beside it, not again
        on_event({"event": "side", "side": f"baseline (recorded: {recorded[0]})"})
        baseline = RunResult.model_validate(recorded[1])
    else:
        on_event({"event": "side", "side": "baseline"})
        baseline = run_scenario(
            baseline_loaded,
            root=root,
            catalog=catalog,
            opts=RunOptions(
                destroy=destroy,
                role="baseline",
                on_event=on_event,
                trust=level,
                verification=vid,
                live=lab,
            ),
            engine=engine,
        )
    on_event({"event": "side", "side": f"candidate ({candidate_loaded.fix})"})
    engine, lab = _live(on, candidate_loaded)  # the lab as the baseline rerun left it
    candidate = run_scenario(
        candidate_loaded,
        root=root,
        catalog=catalog,
        opts=RunOptions(
            destroy=destroy,
            role="candidate",
            on_event=on_event,
            fix_file=fix_text,
            trust=level,
            baseline_rate=(baseline.observed, baseline.attempts),  # a confidence's plan
            verification=vid,
            live=lab,
        ),
        engine=engine,
    )

    result = _fix_result(candidate_loaded, baseline, candidate)
    return _recorded(
        result,
        vid=vid,
        started=started,
        root=root,
        base=baseline_loaded,
        cand=candidate_loaded,
        fix_file=fix_file,
    )


def _recorded(
    result: VerifyFixResult,
    *,
    vid: str,
    started: str,
    root: Path,
    base: LoadedScenario,
    cand: LoadedScenario,
    fix_file: Path | None,
) -> VerifyFixResult:
    """The verification written beside the two runs, and the result pointing at it."""
    written = write_verification(
        root=root,
        vid=vid,
        started=started,
        base=base,
        cand=cand,
        fix_file=fix_file,
        baseline=result.baseline,
        candidate=result.candidate,
        verdict=result.verdict,
        reason=result.reason,
        why=result.why,
        exit_code=result.exit_code,
    )
    return result.model_copy(
        update={
            "verification": vid,
            "verification_folder": str(written.folder),
            "junit": str(written.folder / "junit.xml"),
            "report": written.reports.html or "",
            "report_errors": written.reports.errors,
        }
    )


def _fix_result(
    candidate_loaded: LoadedScenario, baseline: RunResult, candidate: RunResult
) -> VerifyFixResult:
    """The two runs as one verdict (and why); the verification folder's reports come after."""
    asked = candidate_loaded.raw.reproduce.confidence if candidate_loaded.raw.reproduce else None
    verdict, reason = outcomes.fix_verdict(
        baseline.reproduction(),
        candidate.reproduction(),
        baseline.checks,
        candidate.checks,
        confidence=asked,
    )
    fix_def = candidate_loaded.raw.fixes.get(candidate_loaded.fix or "")
    return VerifyFixResult(
        verdict=verdict,
        reason=reason,
        fix=candidate_loaded.fix,
        kind=fix_def.kind if fix_def else None,
        scenario=baseline.scenario,
        baseline=baseline,
        candidate=candidate,
        junit="",
        why=fix_lines(verdict, baseline, candidate),
        exit_code=outcomes.exit_code("verify-fix", verdict),
    )
