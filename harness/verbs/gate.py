"""`lab gate GATE`: a release's compatibility suites, compared cell by cell with the baseline
saved from the previous release's gate run.

A cell is named by its suite and its matrix values without the release axis (the product
version differs between releases by definition). PASS only with no regression (a cell that
passed in the baseline and fails now) and no ERROR.
An untrusted gate (`--untrusted`) checks every suite's cells before the first suite runs.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import outcomes
from harness.errors import UsageError
from harness.outcomes import ERROR, FAIL, SKIP
from harness.run.folder import now_iso, reports_root
from harness.run.ids import new_run_id
from harness.run.provision import OnEvent, _quiet
from harness.run.trust import Trust
from harness.scenario.catalog import load_catalog
from harness.scenario.matrix import cell_label
from harness.scenario.yamlpos import load_yaml
from harness.verbs.matrix import plan_cells, refuse_cells, run_matrix
from harness.verbs.results import GateCell, GateMatrix, GateResult


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateSuite(_M):
    scenario: str = Field(description="a matrix scenario, relative to the project")
    only: dict[str, str] = Field(default_factory=dict, description="cells this release runs")
    params: dict[str, str] = Field(default_factory=dict)


class GateFile(_M):
    gate: str
    description: str | None = None
    release: str | None = None
    release_axis: str | None = Field(
        default=None, description="the matrix axis naming the release; left out of cell names"
    )
    suites: list[GateSuite] = Field(min_length=1)
    baseline: str | None = Field(default=None, description="results file of the previous gate")
    jobs: int = Field(default=1, ge=1)
    on_missing_baseline: Literal["fail", "pass"] = "fail"


def load_gate(path: Path) -> GateFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return GateFile.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise UsageError("\n".join(lines)) from None


def cell_key(suite: str, cell: dict[str, Any], release_axis: str | None) -> str:
    rest = {k: v for k, v in cell.items() if k != release_axis}
    return f"{suite}[{cell_label(rest)}]"


def default_baseline(gate_path: Path, declared: str | None) -> Path:
    """Where `--save-baseline` writes without --baseline-file: the gate's own `baseline:`, else
    baselines/<gate>.json (relative to the project, as run_gate resolves it)."""
    return Path(declared or f"baselines/{gate_path.stem}.json")


def save_baseline_target(gate_path: Path, save: bool, to: Path | None) -> Path | None:
    """`lab gate --save-baseline [--baseline-file TO]`: the file the results go to; None when
    nothing is saved. The gate file is read only when it decides."""
    if not save:
        return None
    if to is not None:
        return to
    return default_baseline(gate_path, load_gate(gate_path).baseline)


def baseline_path(gate_path: Path, gate: GateFile, root: Path, level: Trust) -> Path | None:
    """The baseline file the gate names (relative to the project). An untrusted gate may only
    name one inside the project or the gate file's own folder (symlinks resolved): its
    `baseline:` is someone else's word, and would otherwise read any file on this machine.
    Refused located at the `baseline:` value, exit 2."""
    if not gate.baseline:
        return None
    path = root / gate.baseline
    if not level.restricted:
        return path
    real = Path(os.path.realpath(path))
    inside = [Path(os.path.realpath(d)) for d in (root, gate_path.parent)]
    if any(real == d or d in real.parents for d in inside):
        return path
    line, col = 1, 1
    with suppress(OSError, UnicodeDecodeError):
        located, _ = load_yaml(gate_path.read_text(encoding="utf-8"), str(gate_path))
        if located is not None:
            line, col = located.value_pos(("baseline",))
    raise UsageError(
        f"{gate_path}:{line}:{col}: baseline {gate.baseline[:80]!r} is outside the project"
        f" and the gate file's folder: this gate is untrusted ({level.origin or 'untrusted'});"
        " put the baseline beside the gate file, or pass --trust to read it"
    )


def run_gate(
    gate_path: Path,
    *,
    root: Path,
    jobs: int | None = None,
    save_baseline: Path | None = None,
    on_event: OnEvent = _quiet,
    cluster: str | None = None,
    resume: bool = False,
    untrusted: bool = False,
    trust: bool = False,
) -> GateResult:
    """`untrusted`: the gate file and its suites came from someone else, unless `trust`; every
    suite runs at that level."""
    level = Trust.of(untrusted=untrusted, trust=trust)
    gate = load_gate(gate_path)
    scenarios = _suite_files(gate_path, gate, root, level)
    baseline = _read_baseline(baseline_path(gate_path, gate, root, level))
    gate_id = f"gate-{new_run_id()}"
    folder = reports_root(root) / "gates" / gate.gate / gate_id
    folder.mkdir(parents=True)
    cells, matrices = _run_suites(
        gate,
        scenarios,
        root=root,
        jobs=jobs,
        on_event=on_event,
        cluster=cluster,
        resume=resume,
        untrusted=untrusted,
        trust=trust,
    )
    now = {c.key: c.status for c in cells}
    diff = outcomes.compare(now, baseline)
    errors = [c.key for c in cells if c.status == ERROR]
    verdict, reason = outcomes.gate_verdict(
        diff, errors, gate.baseline, baseline is not None, gate.on_missing_baseline
    )
    result = GateResult.model_validate(
        {
            "gate": gate.gate,
            "release": gate.release,
            "verdict": verdict,
            "reason": reason,
            "baseline": gate.baseline,
            "cells": cells,
            **diff,
            "errors": errors,
            "matrices": matrices,
            "trust": level.as_dict(),
            "folder": str(folder),
            "ended": now_iso(),
            "exit_code": outcomes.exit_code("gate", verdict),
        }
    )
    on_disk = result.model_dump(mode="json", exclude={"exit_code"})
    (folder / "results.json").write_text(json.dumps(on_disk, indent=2, default=str))
    write_gate_junit(folder / "junit.xml", result)
    from harness.store.record import index_folder

    index_folder(reports_root(root), folder)  # the results store (lab serve)
    if save_baseline is not None:
        target = save_baseline if save_baseline.is_absolute() else root / save_baseline
        _write_baseline(target, gate, cells)
        result.saved_baseline = str(target)
    return result


def _run_suites(
    gate: GateFile,
    scenarios: list[Path],
    *,
    root: Path,
    jobs: int | None,
    on_event: OnEvent,
    cluster: str | None,
    resume: bool,
    untrusted: bool,
    trust: bool,
) -> tuple[list[GateCell], list[GateMatrix]]:
    """Each suite's matrix in turn: every cell keyed for the baseline, and each matrix's
    summary."""
    cells: list[GateCell] = []
    matrices: list[GateMatrix] = []
    for suite, scen in zip(gate.suites, scenarios, strict=True):
        on_event({"event": "side", "side": f"suite {suite.scenario}"})
        m = run_matrix(
            scen,
            root=root,
            jobs=jobs or gate.jobs,
            params=suite.params or None,
            only=suite.only or None,
            on_event=on_event,
            cluster=cluster,
            resume=resume,
            untrusted=untrusted,
            trust=trust,
        )
        matrices.append(GateMatrix(scenario=suite.scenario, folder=m.folder, summary=m.summary))
        cells += [
            GateCell(
                key=cell_key(m.scenario, c.cell, gate.release_axis),
                suite=m.scenario,
                cell=c.cell,
                status=c.status,
                verdict=c.verdict,
                reason=c.reason,
                run=c.run,
                folder=c.folder,
            )
            for c in m.cells
        ]
    return cells, matrices


def _suite_files(gate_path: Path, gate: GateFile, root: Path, level: Trust) -> list[Path]:
    """Each suite's scenario file; all checked (exist, and pass an untrusted gate's refusals)
    before the first suite runs."""
    scenarios = [root / s.scenario for s in gate.suites]
    for suite, scen in zip(gate.suites, scenarios, strict=True):
        if not scen.is_file():
            raise UsageError(f"{gate_path}: suite {suite.scenario} does not exist")
    if level.restricted:  # a refusal in the last suite must not come after the first has run
        catalog = load_catalog(root)
        for suite, scen in zip(gate.suites, scenarios, strict=True):
            planned, _ = plan_cells(scen, root, catalog, suite.params or None, suite.only or None)
            refuse_cells([ld for _, ld, _ in planned if ld is not None], level)
    return scenarios


def _read_baseline(base_path: Path | None) -> dict[str, str] | None:
    """cell key -> status from a saved baseline; None when there is none yet."""
    if base_path is None or not base_path.is_file():
        return None
    try:
        return {c["key"]: c["status"] for c in json.loads(base_path.read_text())["cells"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{base_path}: not a gate results file ({exc})") from None


def _write_baseline(target: Path, gate: GateFile, cells: list[GateCell]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = {
        "gate": gate.gate,
        "release": gate.release,
        "saved": now_iso(),
        "cells": [{"key": c.key, "status": c.status, "verdict": c.verdict} for c in cells],
    }
    target.write_text(json.dumps(saved, indent=2) + "\n")


def write_gate_junit(path: Path, result: GateResult) -> None:
    """One testcase per cell: regressions fail, ERROR cells error, SKIP cells are skipped."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    regressed = {r["cell"] for r in result.regressions}
    suite = TestSuite(f"gate {result.gate}")
    suite.add_property("gate", result.gate)
    suite.add_property("verdict", result.verdict)
    suite.add_property("baseline", str(result.baseline))
    for c in result.cells:
        case = TestCase(c.key, classname=f"gate.{result.gate}")
        if c.key in regressed:
            case.result = [Failure(f"regression: PASS in the baseline, {c.status} now")]
        elif c.status == ERROR:
            case.result = [Error(c.reason or "infrastructure error")]
        elif c.status == FAIL:
            case.result = [Failure(f"FAIL (also failing in the baseline): {c.reason}")]
        elif c.status == SKIP:
            case.result = [Skipped(c.reason or "skipped")]
        if c.folder:
            case.system_out = f"[[ATTACHMENT|{Path(c.folder) / 'report.html'}]]"
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)
