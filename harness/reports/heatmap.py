"""matrix.html: the matrix as a heatmap, first axis as rows, the other axes as columns, each
cell coloured by status and linking to its run's report. Self-contained: opens from file://."""

from __future__ import annotations

import html
import itertools
import os
from pathlib import Path
from typing import Any

from harness import outcomes

COLOURS = {
    outcomes.PASS: "#2e7d32",
    outcomes.FAIL: "#c62828",
    outcomes.ERROR: "#6a1b9a",
    outcomes.SKIP: "#9e9e9e",
}


def _key(cell: dict[str, Any], names: list[str]) -> tuple[str, ...]:
    return tuple(str(cell.get(n, "")) for n in names)


def write_heatmap(folder: Path, data: dict[str, Any]) -> Path:
    axes: dict[str, list[Any]] = data.get("axes") or {}
    cells: list[dict[str, Any]] = data.get("cells", [])
    names = list(axes) or sorted({k for c in cells for k in c["cell"]})
    rows_axis, col_axes = (names[0], names[1:]) if names else ("cell", [])
    row_values = [str(v) for v in axes.get(rows_axis, [])] or sorted(
        {str(c["cell"].get(rows_axis, "")) for c in cells}
    )
    col_values = list(itertools.product(*[[str(v) for v in axes.get(a, [])] for a in col_axes]))
    extra = {_key(c["cell"], col_axes) for c in cells} - set(col_values)  # include: cells
    col_values += sorted(extra)
    by = {(str(c["cell"].get(rows_axis, "")), _key(c["cell"], col_axes)): c for c in cells}
    e = html.escape

    def col_title(cv: tuple[str, ...]) -> str:
        return ", ".join(f"{a}={v}" for a, v in zip(col_axes, cv, strict=True)) or "result"

    head = "".join(f"<th>{e(col_title(cv))}</th>" for cv in col_values)
    body = []
    for rv in row_values:
        tds = []
        for cv in col_values:
            c = by.get((rv, cv))
            if c is None:
                tds.append('<td class="none">-</td>')
                continue
            status = c["status"]
            label = f"{status}" + (f" {c['rate']}" if c.get("rate") else "")
            ci = f" ({c['interval']})" if c.get("interval") else ""
            title = e(f"{c['label']}: {c.get('verdict', '')}{ci} {c.get('reason', '')}")
            inner = e(label)
            if c.get("folder"):
                rel = os.path.relpath(Path(c["folder"]) / "report.html", folder)
                inner = f'<a href="{e(rel)}">{inner}</a>'
            colour = COLOURS.get(status, "#fff")
            tds.append(f'<td style="background:{colour}" title="{title}">{inner}</td>')
        body.append(f"<tr><th>{e(rows_axis)}={e(rv)}</th>{''.join(tds)}</tr>")
    s = data.get("summary", {})
    counts = " ".join(f"{k} {v}" for k, v in s.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(data.get("scenario", ""))} matrix</title>
<style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:.4em .8em;text-align:center}}
td a,td{{color:#fff;text-decoration:none;font-weight:bold}} td.none{{color:#999}}
</style></head><body>
<h1>{e(data.get("scenario", ""))}: matrix {e(data.get("matrix", ""))}</h1>
<p>{e(counts)} &middot; {e(str(data.get("seconds", "")))} s
&middot; -j {e(str(data.get("jobs", "")))} &middot; engine {e(str(data.get("engine", "")))}</p>
<table><tr><th></th>{head}</tr>
{"".join(body)}
</table></body></html>
"""
    out = folder / "matrix.html"
    out.write_text(page)
    return out
