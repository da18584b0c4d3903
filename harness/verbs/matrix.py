"""`lab matrix`: every cell of a scenario's matrix on its own isolated topology, in parallel.

The verb plans the cells and hands them to an executor (harness/verbs/executors.py: local
threads, or Dask in harness/distributed.py); everything around the executor is here, once:
planning, refusing, SKIPs, each cell's record, the cells never run, closing the results.

A cell PASSes when its checks are green and, with `reproduce`, its verdict is the expected one
(`reproduce.expect`, NOT_REPRODUCED by default: the symptom is the failure); FAIL otherwise;
ERROR when the engine or a build failed (never counted as FAIL); SKIP when the cell cannot be
built as written (a version not made for that OS) or was not run (interrupted).
Results are written after every cell, so nothing finished is lost to a Ctrl-C or a crash.
An untrusted matrix (`--untrusted`, harness/run/trust.py) is checked cell by cell before anything
exists: one refused cell refuses the whole matrix (exit 2), unless `--trust`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import outcomes
from harness.errors import Interrupted, UsageError
from harness.run.folder import now_iso, reports_root
from harness.run.ids import new_run_id
from harness.run.provision import OnEvent, _quiet
from harness.run.signals import SignalInterrupt, interrupts_raise
from harness.run.trust import TRUSTED, Trust, capability_problems, host_code_problems
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.matrix import axes_of, cell_label, expand
from harness.scenario.problems import Problem, ScenarioInvalid
from harness.scenario.yamlpos import load_yaml
from harness.verbs.executors import (
    CellExecutor,
    CellOutcome,
    LocalExecutor,
    PlannedCell,
    Record,
)
from harness.verbs.results import MatrixCell, MatrixResult

PASS, FAIL, ERROR, SKIP = outcomes.PASS, outcomes.FAIL, outcomes.ERROR, outcomes.SKIP


def cell_result(
    cell: dict[str, Any], r: dict[str, Any], expect: str | None, seconds: float
) -> MatrixCell:
    """A finished cell as results.json records it, from its run's result (plain data: it may
    come from a Dask worker, or be a worker's ERROR without a run of its own)."""
    return MatrixCell(
        cell=cell,
        label=cell_label(cell),
        status=outcomes.cell_status(r["verdict"], r.get("checks_green", True), expect),
        verdict=r["verdict"],
        expected=expect,
        rate=r["rate"],
        interval=(r.get("interval") or {}).get("text"),
        reason=r["reason"],
        checks=[{"name": c["name"], "passed": c.get("passed")} for c in r["checks"]],
        run=r["run"],
        folder=r["folder"],
        seconds=round(seconds, 2),
    )


def raw_matrix(path: Path) -> Any:
    """The raw `matrix:`, read as safely as validation reads it (no fifo, size limit), and
    refused when over the limits before any cell is built."""
    from harness.scenario.matrix import too_big
    from harness.scenario.readfile import Unreadable, read_text

    try:
        located, problems = load_yaml(read_text(path), str(path))
    except Unreadable as exc:
        raise UsageError(f"{path}: {exc.message}") from None
    if located is None or problems or not isinstance(located.data, dict):
        return None
    matrix = located.data.get("matrix")
    why = too_big(matrix)
    if why is not None:
        raise UsageError(f"{path}: {why}")
    return matrix


def plan_cells(
    scenario: Path,
    root: Path,
    catalog: Catalog,
    params: dict[str, str] | None,
    only: dict[str, str] | None = None,
) -> tuple[list[tuple[dict[str, Any], LoadedScenario | None, str | None]], dict[str, list[Any]]]:
    """Each cell with its loaded scenario, or None and why it is skipped. A scenario broken in
    every cell is bad input (exit 2), not a table of SKIPs."""
    matrix = raw_matrix(scenario)
    cells = expand(matrix)
    if only:
        cells = [c for c in cells if all(str(c.get(k)) == v for k, v in only.items())]
        if not cells:
            raise UsageError(f"no cell of {scenario} matches {only}")
    planned: list[tuple[dict[str, Any], LoadedScenario | None, str | None]] = []
    first_error: ScenarioInvalid | None = None
    for cell in cells:
        try:
            loaded = load_scenario(scenario, root=root, catalog=catalog, params=params, cell=cell)
            planned.append((cell, loaded, None))
        except ScenarioInvalid as exc:
            first_error = first_error or exc
            planned.append((cell, None, "; ".join(p.message for p in exc.problems)))
    if first_error is not None and all(p[1] is None for p in planned):
        raise first_error
    return planned, axes_of(matrix)


def refuse_cells(loaded: list[LoadedScenario], level: Trust) -> None:
    """What `level` refuses in any cell, all at once, before a folder, an image or a container
    exists. Half a matrix is no answer, so one refused cell refuses the matrix (exit 2); the same
    playbook refused in every cell is reported once, at its line."""
    problems: set[Problem] = set()
    for ld in loaded:
        problems.update(host_code_problems(ld, level))
        problems.update(capability_problems(ld, ld.topology, level))
    if problems:
        raise ScenarioInvalid(list(problems))


class MatrixResults:
    """results.json, rewritten (atomically) after every cell: the header, the cells, and once
    closed the summary (`tail`)."""

    def __init__(self, folder: Path, header: dict[str, Any]) -> None:
        self.folder = folder
        self.header = header
        self.cells: list[MatrixCell] = []
        self.tail: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.flush()

    def add(self, cell: MatrixCell) -> None:
        with self.lock:
            self.cells.append(cell)
            self.flush()

    @property
    def data(self) -> dict[str, Any]:
        """results.json's content."""
        cells = [c.model_dump(mode="json") for c in self.cells]
        return {**self.header, "cells": cells, **self.tail}

    def flush(self) -> None:
        tmp = self.folder / "results.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.folder / "results.json")

    def result(self, exit_code: int) -> MatrixResult:
        """The verb's result: results.json's content, where it is, and the exit code."""
        return MatrixResult.model_validate(
            {**self.header, "cells": self.cells, **self.tail, "folder": str(self.folder)}
            | {"exit_code": exit_code}
        )


def _skip(cell: dict[str, Any], reason: str) -> MatrixCell:
    return MatrixCell(cell=cell, label=cell_label(cell), status=SKIP, reason=reason)


def in_order(cells: list[MatrixCell], order: list[str]) -> list[MatrixCell]:
    """Cells in matrix order (they finish in any order)."""
    rank = {label: i for i, label in enumerate(order)}
    return sorted(cells, key=lambda c: rank.get(c.label, len(rank)))


def check_options(jobs: int, cluster: str | None, resume: bool) -> None:
    if resume and not cluster:
        raise UsageError("--resume needs --cluster", hint="resume reruns a cluster matrix's gaps")
    if not cluster and jobs < 1:
        raise UsageError("-j must be at least 1")


def run_matrix(
    scenario: Path,
    *,
    root: Path,
    jobs: int = 1,
    params: dict[str, str] | None = None,
    only: dict[str, str] | None = None,
    destroy: str = "always",
    on_event: OnEvent = _quiet,
    name: str | None = None,
    cluster: str | None = None,
    resume: bool = False,
    untrusted: bool = False,
    trust: bool = False,
) -> MatrixResult:
    """`untrusted`: the file came from someone else (harness/run/trust.py), unless `trust`.
    Every cell runs at that level, here or on a cluster worker. `cluster`: every cell to a
    Dask scheduler (harness/distributed.py), else `jobs` at a time on the local engine."""
    level = Trust.of(untrusted=untrusted, trust=trust)
    check_options(jobs, cluster, resume)
    catalog = load_catalog(root)
    executor: CellExecutor
    if cluster:
        from harness.distributed import DaskExecutor

        executor = DaskExecutor(
            cluster, scenario=scenario, root=root, params=params, destroy=destroy,
            trust=level, on_event=on_event,
        )  # fmt: skip
    else:
        executor = LocalExecutor(
            root=root, catalog=catalog, jobs=jobs, destroy=destroy, trust=level,
            on_event=on_event,
        )  # fmt: skip
    return run_with(
        executor,
        scenario,
        root=root,
        catalog=catalog,
        params=params,
        only=only,
        on_event=on_event,
        name=name,
        resume=resume,
        trust=level,
    )


def run_with(
    executor: CellExecutor,
    scenario: Path,
    *,
    root: Path,
    catalog: Catalog,
    params: dict[str, str] | None = None,
    only: dict[str, str] | None = None,
    on_event: OnEvent = _quiet,
    name: str | None = None,
    resume: bool = False,
    trust: Trust = TRUSTED,
) -> MatrixResult:
    """The matrix around any executor: plan, refuse, the folder (or the one --resume
    continues), then the cells (`_run_cells`), the cells never run, the summary and the
    outputs; exit 3 when the executor lost cells, else 1 on a FAIL or ERROR, else 0. An
    interruption is re-raised after the results are closed."""
    if resume and not executor.resumable:
        raise UsageError("--resume needs --cluster", hint="resume reruns a cluster matrix's gaps")
    planned, axes = plan_cells(scenario, root, catalog, params, only)
    runnable = [PlannedCell(c, ld) for c, ld, _ in planned if ld is not None]
    refuse_cells([p.loaded for p in runnable], trust)  # before a folder, engine or scheduler
    scen_name = runnable[0].loaded.topology.scenario
    selection = {"only": only or {}, "params": params or {}} if executor.resumable else {}
    match = {"source": str(scenario), **selection, "trust": trust.as_dict()}
    folder, matrix_id, kept, new = matrix_folder(
        reports_root(root) / scen_name, match if resume else None, name
    )
    head = {"matrix": matrix_id, "scenario": scen_name, "source": str(scenario), **selection}
    results, t0, (interrupted, lost) = _run_cells(
        executor,
        folder,
        {**head, "axes": axes},
        new=new,
        trust=trust,
        cells=(planned, runnable, kept),
        on_event=on_event,
    )
    summary = close_results(
        results, [c for c, _, _ in planned], _not_run(interrupted, lost), t0, interrupted != 0
    )
    if interrupted:
        raise SignalInterrupt(interrupted)
    return results.result(exit_code(summary, lost))


Planned = list[tuple[dict[str, Any], LoadedScenario | None, str | None]]


def _run_cells(
    executor: CellExecutor,
    folder: Path,
    head: dict[str, Any],
    *,
    new: bool,
    trust: Trust,
    cells: tuple[Planned, list[PlannedCell], list[MatrixCell]],
    on_event: OnEvent,
) -> tuple[MatrixResults, float, tuple[int, str | None]]:
    """Open the executor, make the folder (a new one only once the executor is open: no
    engine, no scheduler, no empty folder), write the header, the kept cells and the SKIPs,
    run the rest; (the results, when the cells started, `_execute`'s answer)."""
    planned, runnable, kept = cells
    resumable = executor.resumable
    info = executor.open(head["matrix"])  # InfraError (exit 3): no engine, no scheduler
    try:
        if new:
            folder.mkdir(parents=True, exist_ok=False)
        results = MatrixResults(
            folder,
            {
                **head,
                **info.header,
                "trust": trust.as_dict(),
                "started": now_iso(),
                **({"resumed": bool(kept)} if resumable else {}),
            },
        )
        todo = _seed(results, planned, runnable, kept)
        on_event(
            {
                "event": "matrix",
                "matrix": head["matrix"],
                "folder": str(folder),
                "cells": len(planned),
                **({"todo": len(todo)} if resumable else {}),
                **info.event,
            }
        )
        t0 = time.monotonic()
        return results, t0, _execute(executor, todo, recorder(results, on_event))
    finally:
        executor.close()


def _seed(
    results: MatrixResults,
    planned: Planned,
    runnable: list[PlannedCell],
    kept: list[MatrixCell],
) -> list[PlannedCell]:
    """Record the cells kept from a resumed matrix and the SKIPs; the cells left to run."""
    done = {c.label for c in kept}
    for c in kept:
        results.add(c)
    for cell, _, why in planned:
        if why is not None and cell_label(cell) not in done:
            results.add(_skip(cell, why))
    return [p for p in runnable if p.label not in done]


def _execute(
    executor: CellExecutor, todo: list[PlannedCell], record: Record
) -> tuple[int, str | None]:
    """(the signal that interrupted the cells or 0, why the executor lost cells or None)."""
    with interrupts_raise():
        try:
            return 0, executor.run(todo, record)
        except (SignalInterrupt, KeyboardInterrupt, Interrupted) as exc:
            return getattr(exc, "signum", 2), None


def _not_run(interrupted: int, lost: str | None) -> Callable[[dict[str, Any]], MatrixCell]:
    """The record of a cell that never ended: SKIP when interrupted, else ERROR (the
    infrastructure lost it, or the executor never said), which --resume runs again."""

    def not_run(cell: dict[str, Any]) -> MatrixCell:
        if interrupted:
            return _skip(cell, "not run: interrupted")
        why = f"not run: {lost or 'the executor never reported it'}"
        return MatrixCell(cell=cell, label=cell_label(cell), status=ERROR, reason=why)

    return not_run


def exit_code(summary: dict[str, int], lost: str | None) -> int:
    """3 when the infrastructure lost cells before they ran, 1 on any FAIL or ERROR, else 0."""
    return outcomes.exit_code("matrix", outcomes.matrix_result(summary, lost is not None))


def cell_record(outcome: CellOutcome) -> MatrixCell | None:
    """A finished cell as results.json records it; None for a cell stopped before it finished
    (close_results records it as not run)."""
    if outcome.interrupted:
        return None
    if outcome.result is not None:
        rec = cell_result(outcome.cell, outcome.result, outcome.expect, outcome.seconds or 0.0)
    else:
        seconds = None if outcome.seconds is None else round(outcome.seconds, 2)
        rec = MatrixCell(
            cell=outcome.cell,
            label=outcome.label,
            status=ERROR,
            reason=outcome.error,
            seconds=seconds,
        )
    return MatrixCell.model_validate({**dict(rec), **outcome.extra}) if outcome.extra else rec


def recorder(results: MatrixResults, on_event: OnEvent) -> Record:
    """What an executor calls as each cell ends (from any thread): the record, then its line."""

    def record(outcome: CellOutcome) -> None:
        rec = cell_record(outcome)
        if rec is None:
            return
        results.add(rec)
        event: dict[str, Any] = {"event": "cell", "cell": rec.label, "state": rec.status}
        if rec.seconds is not None:
            event["seconds"] = rec.seconds
        on_event(event)

    return record


def matrix_folder(
    parent: Path, resume: dict[str, Any] | None, name: str | None
) -> tuple[Path, str, list[MatrixCell], bool]:
    """(folder, matrix id, the cells kept, whether the folder is new): with `resume` (what the
    matrix must match), the newest matching folder and the cells --resume keeps; else a new
    folder, not made yet."""
    folder = find_resumable(parent, resume) if resume is not None else None
    if folder is not None:
        previous = json.loads((folder / "results.json").read_text())
        kept = [MatrixCell.model_validate(c) for c in previous.get("cells", []) if _kept(c)]
        return folder, previous["matrix"], kept, False
    matrix_id = name or f"matrix-{new_run_id()}"
    return parent / matrix_id, matrix_id, [], True


def find_resumable(folder_parent: Path, match: dict[str, Any]) -> Path | None:
    """The newest matrix folder started by the same command (source, only, params, trust)."""
    best: tuple[float, Path] | None = None
    for res in folder_parent.glob("matrix-*/results.json"):
        try:
            data = json.loads(res.read_text())
        except (OSError, ValueError):
            continue
        # a resumed matrix keeps its cells' trust level: a trusted run never fills in an
        # untrusted one's gaps (or the other way round)
        if all(data.get(k) == v for k, v in match.items()):
            m = res.stat().st_mtime
            if best is None or m > best[0]:
                best = (m, res.parent)
    return best[1] if best else None


def _kept(cell: dict[str, Any]) -> bool:
    """What --resume keeps: finished verdicts and cells that cannot be built."""
    if cell["status"] in (PASS, FAIL):
        return True
    return cell["status"] == SKIP and not str(cell.get("reason", "")).startswith("not run")


def close_results(
    results: MatrixResults,
    planned: list[dict[str, Any]],
    not_run: Callable[[dict[str, Any]], MatrixCell],
    t0: float,
    interrupted: bool,
) -> dict[str, int]:
    """The cells that never finished get `not_run(cell)`; then the table in plan order, the
    summary, results.json and the heatmap and merged JUnit. Local and cluster matrices alike."""
    done = {c.label for c in results.cells}
    for cell in planned:
        if cell_label(cell) not in done:
            results.add(not_run(cell))
    results.cells = in_order(results.cells, [cell_label(c) for c in planned])
    summary = summarize(results.cells)
    results.tail.update(
        summary=summary,
        seconds=round(time.monotonic() - t0, 2),
        ended=now_iso(),
        interrupted=interrupted,
    )
    results.flush()
    write_outputs(results.folder, results.data)
    from harness.store.record import index_folder

    # reports/<scenario>/<matrix-id>: the store row, and each cell's run tied to the matrix
    index_folder(results.folder.parent.parent, results.folder)
    return summary


def summarize(cells: list[MatrixCell]) -> dict[str, int]:
    return outcomes.cell_summary(c.status for c in cells)


def write_outputs(folder: Path, data: dict[str, Any]) -> None:
    """The heatmap and the merged JUnit beside results.json; never fails the matrix."""
    from harness.reports.heatmap import write_heatmap
    from harness.reports.junit import merge_junit

    write_heatmap(folder, data)
    files = [Path(c["folder"]) / "junit.xml" for c in data["cells"] if c.get("folder")]
    files = [f for f in files if f.is_file()]
    if files:
        merge_junit(files, folder / "junit.xml")
