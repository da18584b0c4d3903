"""The matrices: the latest matrix of each scenario, and one matrix as a heatmap (first axis as
rows, the other axes as columns, as matrix.html lays it out) whose every cell carries its
history: its status in each earlier matrix of the scenario, oldest first, the shown one last."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from harness.store.entry import ResultEntry
from harness.web.files import ReportFiles
from harness.web.models import (
    HeatCell,
    HeatmapPage,
    HeatRow,
    Mark,
    MatricesPage,
    MatrixRow,
    MatrixScenario,
)
from harness.web.queries import Reader
from harness.web.views import items, mapping, matrix_url, run_url, text

HISTORY = 30  # matrices a cell's history goes back


@dataclass(frozen=True)
class _Cell:
    label: str
    cell: dict[str, str]
    status: str | None
    verdict: str | None
    rate: str | None
    run: str | None
    folder: str | None


def _cells(e: ResultEntry) -> list[_Cell]:
    out = []
    for raw in items(e.detail.get("cells")):
        c = mapping(raw)
        where = {str(k): str(v) for k, v in mapping(c.get("cell")).items()}
        label = text(c.get("label")) or ",".join(f"{k}={v}" for k, v in sorted(where.items()))
        if not label:
            continue
        where = where or {"cell": label}  # no axes recorded: one row per cell
        out.append(
            _Cell(
                label=label,
                cell=where,
                status=text(c.get("status")),
                verdict=text(c.get("verdict")),
                rate=text(c.get("rate")),
                run=text(c.get("run")),
                folder=text(c.get("folder")),
            )
        )
    return out


def matrix_row(e: ResultEntry, files: ReportFiles) -> MatrixRow:
    summary = {
        str(k): v
        for k, v in mapping(e.detail.get("summary")).items()
        if isinstance(v, int) and not isinstance(v, bool)
    } or cell_summary(items(e.detail.get("cells")))
    return MatrixRow(
        id=e.id,
        scenario=e.scenario,
        verdict=e.verdict,
        started=e.started,
        summary=summary,
        cells=len(_cells(e)),
        url=matrix_url(e.scenario, e.id),
        report_url=files.url(e.folder, "matrix.html"),
    )


def matrices_page(reader: Reader, files: ReportFiles) -> MatricesPage:
    by: dict[str, list[ResultEntry]] = {}
    for e in reader.of_kind("matrix"):
        by.setdefault(e.scenario or "", []).append(e)
    return MatricesPage(
        scenarios=[
            MatrixScenario(
                scenario=s,
                url=matrix_url(s),
                latest=matrix_row(found[-1], files),
                matrices=len(found),
            )
            for s, found in sorted(by.items())
            if s
        ]
    )


def _key(cell: dict[str, str], names: list[str]) -> tuple[str, ...]:
    return tuple(cell.get(n, "") for n in names)


def _layout(
    e: ResultEntry, cells: list[_Cell]
) -> tuple[str, list[str], list[str], list[tuple[str, ...]]]:
    """(row axis, column axes, row values, column value tuples), in the order of the matrix's
    axes then any `include:` cells beyond them; values no cell has (an `--only` selection, an
    excluded corner) get no row or column."""
    axes = {str(a): [str(v) for v in items(vs)] for a, vs in mapping(e.detail.get("axes")).items()}
    names = list(axes) or sorted({k for c in cells for k in c.cell})
    row_axis, col_axes = (names[0], names[1:]) if names else ("cell", [])
    held_rows = {c.cell.get(row_axis, "") for c in cells}
    held_cols = {_key(c.cell, col_axes) for c in cells}
    rows = [v for v in axes.get(row_axis, []) if v in held_rows]  # a value no cell ran: no row
    rows += sorted(held_rows - set(rows))
    cols = [v for v in itertools.product(*[axes.get(a, []) for a in col_axes]) if v in held_cols]
    cols += sorted(held_cols - set(cols))
    return row_axis, col_axes, rows, cols


def _history(
    label: str, past: list[tuple[ResultEntry, dict[str, _Cell]]], indexed: set[str]
) -> list[Mark]:
    marks = []
    for m, by_label in past:
        c = by_label.get(label)
        run = c.run if c is not None else None
        marks.append(
            Mark(
                matrix=m.id,
                started=m.started,
                status=c.status if c is not None else None,
                run=run,
                url=run_url(run) if run and run in indexed else None,
            )
        )
    return marks


def heatmap_page(
    reader: Reader, files: ReportFiles, scenario: str, mid: str | None = None
) -> HeatmapPage | None:
    """The heatmap of the scenario's matrix `mid` (default: its latest); None when the index
    holds no such matrix."""
    found = reader.of_kind("matrix", scenario=scenario)
    at = next((i for i, m in enumerate(found) if m.id == mid), None) if mid else len(found) - 1
    if at is None or at < 0:
        return None
    shown = found[at]
    past = [(m, {c.label: c for c in _cells(m)}) for m in found[max(0, at + 1 - HISTORY) : at + 1]]
    runs = {c.run for _, by in past for c in by.values() if c.run}
    indexed = {i for i, kind in reader.kinds_of(sorted(runs)).items() if kind == "run"}
    cells = _cells(shown)
    row_axis, col_axes, row_values, col_values = _layout(shown, cells)
    by = {(c.cell.get(row_axis, ""), _key(c.cell, col_axes)): c for c in cells}

    def heat(c: _Cell | None) -> HeatCell | None:
        if c is None:
            return None
        url = run_url(c.run) if c.run and c.run in indexed else files.url(c.folder, "report.html")
        return HeatCell(
            label=c.label,
            cell=c.cell,
            status=c.status,
            verdict=c.verdict,
            rate=c.rate,
            run=c.run,
            url=url,
            history=_history(c.label, past, indexed),
        )

    return HeatmapPage(
        scenario=scenario,
        matrix=matrix_row(shown, files),
        history=[matrix_row(m, files) for m, _ in past],
        row_axis=row_axis,
        column_axes=col_axes,
        columns=[_column_title(cv, col_axes) for cv in col_values],
        rows=[
            HeatRow(label=rv, cells=[heat(by.get((rv, cv))) for cv in col_values])
            for rv in row_values
        ],
    )


def _column_title(values: tuple[str, ...], names: list[str]) -> str:
    return ", ".join(f"{a}={v}" for a, v in zip(names, values, strict=True)) or "result"


def cell_summary(cells: list[Any]) -> dict[str, int]:
    """Statuses counted (for a matrix whose record has no summary)."""
    out: dict[str, int] = {}
    for c in cells:
        status = text(mapping(c).get("status"))
        if status:
            out[status] = out.get(status, 0) + 1
    return out
