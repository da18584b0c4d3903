"""`lab matrix`: every cell of a scenario's matrix on its own isolated topology, in parallel.

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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from harness import outcomes
from harness.engine.connection import connect_engine
from harness.errors import HarnessError, Interrupted, UsageError
from harness.run.execute import RunOptions, run_scenario
from harness.run.folder import now_iso, reports_root
from harness.run.ids import new_run_id
from harness.run.provision import OnEvent, _quiet
from harness.run.signals import SignalInterrupt, StopFlag, interrupts_raise
from harness.run.trust import TRUSTED, Trust, capability_problems, host_code_problems
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.matrix import axes_of, cell_label, expand
from harness.scenario.problems import Problem, ScenarioInvalid
from harness.scenario.yamlpos import load_yaml

PASS, FAIL, ERROR, SKIP = outcomes.PASS, outcomes.FAIL, outcomes.ERROR, outcomes.SKIP


def cell_result(
    cell: dict[str, Any], r: dict[str, Any], expect: str | None, seconds: float
) -> dict[str, Any]:
    """A finished cell as results.json records it, from its run's result."""
    return {
        "cell": cell,
        "label": cell_label(cell),
        "status": outcomes.cell_status(r["verdict"], r.get("checks_green", True), expect),
        "verdict": r["verdict"],
        "expected": expect,
        "rate": r["rate"],
        "reason": r["reason"],
        "checks": [{"name": c["name"], "passed": c.get("passed")} for c in r["checks"]],
        "run": r["run"],
        "folder": r["folder"],
        "seconds": round(seconds, 2),
    }


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
    """results.json, rewritten (atomically) after every cell."""

    def __init__(self, folder: Path, header: dict[str, Any]) -> None:
        self.folder = folder
        self.data: dict[str, Any] = {**header, "cells": []}
        self.lock = threading.Lock()
        self.flush()

    def add(self, cell: dict[str, Any]) -> None:
        with self.lock:
            self.data["cells"].append(cell)
            self.flush()

    def flush(self) -> None:
        tmp = self.folder / "results.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.folder / "results.json")


def _skip(cell: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"cell": cell, "label": cell_label(cell), "status": SKIP, "reason": reason}


def in_order(cells: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """Cells in matrix order (they finish in any order)."""
    rank = {label: i for i, label in enumerate(order)}
    return sorted(cells, key=lambda c: rank.get(c["label"], len(rank)))


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
) -> dict[str, Any]:
    """`untrusted`: the file came from someone else (harness/run/trust.py), unless `trust`.
    Every cell runs at that level, here or on a cluster worker."""
    level = Trust.of(untrusted=untrusted, trust=trust)
    if cluster or resume:  # scale-out: every cell to a Dask scheduler (harness/distributed.py)
        from harness.distributed import check_cluster_options, run_matrix_cluster

        check_cluster_options(cluster, resume)
        assert cluster is not None
        return run_matrix_cluster(
            scenario,
            root=root,
            cluster=cluster,
            params=params,
            only=only,
            destroy=destroy,
            on_event=on_event,
            name=name,
            resume=resume,
            trust=level,
        )
    if jobs < 1:
        raise UsageError("-j must be at least 1")
    catalog = load_catalog(root)
    planned, axes = plan_cells(scenario, root, catalog, params, only)
    runnable = [(c, ld) for c, ld, _ in planned if ld is not None]
    refuse_cells([ld for _, ld in runnable], level)
    scen_name = runnable[0][1].topology.scenario
    matrix_id = name or f"matrix-{new_run_id()}"
    folder = reports_root(root) / scen_name / matrix_id
    folder.mkdir(parents=True, exist_ok=False)
    engine = connect_engine()
    results = MatrixResults(
        folder,
        {
            "matrix": matrix_id,
            "scenario": scen_name,
            "source": str(scenario),
            "axes": axes,
            "jobs": jobs,
            "trust": level.as_dict(),
            "engine": engine.version(),
            "started": now_iso(),
        },
    )
    on_event(
        {
            "event": "matrix",
            "matrix": matrix_id,
            "folder": str(folder),
            "cells": len(planned),
            "jobs": jobs,
        }
    )
    for cell, _, why in planned:
        if why is not None:
            results.add(_skip(cell, why))
    cancel = StopFlag()
    t0 = time.monotonic()
    interrupted: BaseException | None = None
    with interrupts_raise():
        try:
            # images first, one at a time: cells in parallel then only start containers
            for _, loaded in runnable:
                engine.ensure_images(loaded.topology, catalog, on_progress=on_event)
            _run_cells(runnable, catalog, root, jobs, destroy, cancel, results, on_event, level)
        except (SignalInterrupt, KeyboardInterrupt) as exc:
            interrupted = exc
    summary = close_results(
        results,
        [c for c, _, _ in planned],
        lambda cell: _skip(cell, "not run: interrupted"),
        t0,
        interrupted is not None,
    )
    if interrupted is not None:
        raise SignalInterrupt(getattr(interrupted, "signum", 2))
    return {
        **results.data,
        "folder": str(folder),
        "exit_code": outcomes.exit_code("matrix", outcomes.matrix_result(summary)),
    }


def _run_cells(
    runnable: list[tuple[dict[str, Any], LoadedScenario]],
    catalog: Catalog,
    root: Path,
    jobs: int,
    destroy: str,
    cancel: StopFlag,
    results: MatrixResults,
    on_event: OnEvent,
    trust: Trust = TRUSTED,
) -> None:
    def one(cell: dict[str, Any], loaded: LoadedScenario) -> dict[str, Any]:
        label = cell_label(cell)
        on_event({"event": "cell", "cell": label, "state": "started"})
        t = time.monotonic()
        expect = loaded.raw.reproduce.expect if loaded.raw.reproduce else None
        try:
            r = run_scenario(
                loaded,
                root=root,
                catalog=catalog,
                opts=RunOptions(
                    destroy=destroy,
                    role="cell",
                    cancel=cancel,
                    cell=label,
                    on_event=on_event,
                    trust=trust,
                ),
            )
        except Interrupted:
            return _skip(cell, "interrupted while running: torn down")
        except HarnessError as exc:  # before the run existed (engine gone, bad option)
            out = {
                "cell": cell,
                "label": label,
                "status": ERROR,
                "reason": exc.message,
                "seconds": round(time.monotonic() - t, 2),
            }
            results.add(out)
            return out
        out = cell_result(cell, r, expect if loaded.raw.reproduce else None, time.monotonic() - t)
        results.add(out)
        on_event(
            {"event": "cell", "cell": label, "state": out["status"], "seconds": out["seconds"]}
        )
        return out

    pool = ThreadPoolExecutor(max_workers=jobs)
    futures: list[Future[dict[str, Any]]] = [pool.submit(one, c, ld) for c, ld in runnable]
    try:
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    except BaseException:
        cancel.set()  # running cells tear down; cells not started never start
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def close_results(
    results: MatrixResults,
    planned: list[dict[str, Any]],
    not_run: Callable[[dict[str, Any]], dict[str, Any]],
    t0: float,
    interrupted: bool,
) -> dict[str, int]:
    """The cells that never finished get `not_run(cell)`; then the table in plan order, the
    summary, results.json and the heatmap and merged JUnit. Local and cluster matrices alike."""
    done = {c["label"] for c in results.data["cells"]}
    for cell in planned:
        if cell_label(cell) not in done:
            results.add(not_run(cell))
    results.data["cells"] = in_order(results.data["cells"], [cell_label(c) for c in planned])
    summary = summarize(results.data["cells"])
    results.data.update(
        summary=summary,
        seconds=round(time.monotonic() - t0, 2),
        ended=now_iso(),
        interrupted=interrupted,
    )
    results.flush()
    write_outputs(results.folder, results.data)
    return summary


def summarize(cells: list[dict[str, Any]]) -> dict[str, int]:
    return outcomes.cell_summary(c["status"] for c in cells)


def write_outputs(folder: Path, data: dict[str, Any]) -> None:
    """The heatmap and the merged JUnit beside results.json; never fails the matrix."""
    from harness.reports.heatmap import write_heatmap
    from harness.reports.junit import merge_junit

    write_heatmap(folder, data)
    files = [Path(c["folder"]) / "junit.xml" for c in data["cells"] if c.get("folder")]
    files = [f for f in files if f.is_file()]
    if files:
        merge_junit(files, folder / "junit.xml")
