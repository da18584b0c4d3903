"""Matrix expansion, as in GitHub Actions: the cartesian product of the axes, minus `exclude`,
plus `include`.

- exclude: a cell is dropped when it matches every key/value of one exclude entry.
- include: an entry is merged into every remaining cell whose axis values it does not contradict
  (it may add new keys); when it fits no cell, it becomes a cell of its own.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from harness.scenario.limits import MAX_MATRIX_AXES, MAX_MATRIX_CELLS

MAX_CELLS = MAX_MATRIX_CELLS  # the name callers used before limits.py
RESERVED = ("include", "exclude")


class MatrixTooBig(ValueError):
    """expand() refuses a matrix over the limits rather than build it (memory)."""


def too_big(matrix: Any) -> str | None:
    """Why a raw `matrix:` is over the limits, or None; the product of the axis lengths is
    computed before any cell is built, so an 8-axis x 10-value matrix costs nothing."""
    axes = axes_of(matrix)
    if len(axes) > MAX_MATRIX_AXES:
        return f"the matrix has {len(axes)} axes; at most {MAX_MATRIX_AXES} (limit MAX_MATRIX_AXES)"
    cells = math.prod(len(v) for v in axes.values()) + len(_entries(matrix, "include"))
    if cells > MAX_MATRIX_CELLS:
        sizes = " x ".join(str(len(v)) for v in axes.values())
        return (
            f"the matrix has {cells:,} cells ({sizes} before exclude, plus include); at most "
            f"{MAX_MATRIX_CELLS} (limit MAX_MATRIX_CELLS)"
        )
    return None


def axes_of(matrix: Any) -> dict[str, list[Any]]:
    """The axes of a raw `matrix:` mapping, skipping anything malformed (the schema reports it)."""
    if not isinstance(matrix, dict):
        return {}
    return {
        str(k): v
        for k, v in matrix.items()
        if k not in RESERVED and isinstance(v, list) and v and not _has_collections(v)
    }


def _has_collections(values: list[Any]) -> bool:
    return any(isinstance(v, list | dict) for v in values)


def _entries(matrix: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(matrix, dict) or not isinstance(matrix.get(key), list):
        return []
    return [
        e for e in matrix[key] if isinstance(e, dict) and not _has_collections(list(e.values()))
    ]


def expand(matrix: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Every cell of the matrix, in order; [{}] when there is no matrix. Raises MatrixTooBig
    for a matrix over the limits (validation reports it, located, before this is called)."""
    why = too_big(matrix)
    if why is not None:
        raise MatrixTooBig(why)
    axes = axes_of(matrix)
    names = list(axes)
    includes = _entries(matrix, "include")
    if not axes:
        return ([dict(i) for i in includes] or [{}])[:limit]
    cells: list[dict[str, Any]] = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())
    ]
    for ex in _entries(matrix, "exclude"):
        cells = [c for c in cells if not all(k in c and c[k] == v for k, v in ex.items())]
    originals = [dict(c) for c in cells]
    for inc in includes:
        fitted = False
        for cell, orig in zip(cells, originals, strict=True):
            if all(orig[k] == v for k, v in inc.items() if k in orig):
                cell.update(inc)
                fitted = True
        if not fitted:
            cells.append(dict(inc))
            originals.append(dict(inc))
    return cells[:limit] if limit is not None else cells


def cell_label(cell: dict[str, Any]) -> str:
    """`client_os=debian-12,tls=1.3`, for messages and run names."""
    return ",".join(f"{k}={v}" for k, v in cell.items())
