"""Matrix expansion with include/exclude, GitHub Actions style."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.scenario.matrix import MatrixTooBig, cell_label, expand, too_big


def test_no_matrix_is_one_empty_cell() -> None:
    assert expand(None) == [{}]
    assert expand({}) == [{}]


def test_cartesian_product_in_order() -> None:
    cells = expand({"os": ["a", "b"], "v": [1, 2]})
    assert cells == [
        {"os": "a", "v": 1},
        {"os": "a", "v": 2},
        {"os": "b", "v": 1},
        {"os": "b", "v": 2},
    ]


def test_exclude_then_include() -> None:
    matrix = {
        "os": ["a", "b"],
        "v": [1, 2],
        "exclude": [{"os": "a", "v": 2}],
        "include": [{"os": "a", "extra": "x"}, {"os": "c", "v": 9}],
    }
    assert expand(matrix) == [
        {"os": "a", "v": 1, "extra": "x"},  # added to matching cells
        {"os": "b", "v": 1},
        {"os": "b", "v": 2},
        {"os": "c", "v": 9},  # fits no cell: a new one
    ]


def test_include_only() -> None:
    assert expand({"include": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]


def test_everything_excluded_and_limit() -> None:
    assert expand({"os": ["a"], "exclude": [{"os": "a"}]}) == []
    assert len(expand({"a": list(range(16)), "b": list(range(16))})) == 256
    assert len(expand({"a": list(range(16)), "b": list(range(16))}, limit=10)) == 10


def test_a_matrix_over_the_limits_is_refused_before_it_is_built() -> None:
    """10^8 cells would take gigabytes: the product is computed first (issue 13)."""
    eight = {f"ax{i}": list(range(10)) for i in range(8)}
    assert too_big(eight) == "the matrix has 8 axes; at most 6 (limit MAX_MATRIX_AXES)"
    six = {f"ax{i}": list(range(10)) for i in range(6)}
    assert "1,000,000 cells (10 x 10 x 10 x 10 x 10 x 10 before exclude" in str(too_big(six))
    with pytest.raises(MatrixTooBig, match="MAX_MATRIX_CELLS"):
        expand({"a": list(range(20)), "b": list(range(20))}, limit=256)
    assert too_big({"a": list(range(16)), "b": list(range(16))}) is None


def test_malformed_axes_are_skipped() -> None:
    assert expand({"os": "a", "v": [[1]], "w": [1]}) == [{"w": 1}]


def test_cell_label() -> None:
    assert cell_label({"os": "debian-12", "tls": 1.3}) == "os=debian-12,tls=1.3"


def test_the_matrix_verbs_read_the_file_safely_and_refuse_a_huge_matrix(tmp_path: Path) -> None:
    """`lab matrix` / `lab reproduce --cell` read the raw matrix themselves: the same limits."""
    from harness.errors import UsageError
    from harness.verbs.matrix import raw_matrix

    big = tmp_path / "big.yaml"
    big.write_text("matrix:\n" + "".join(f"  ax{i}: [0, 1, 2, 3]\n" for i in range(8)))
    with pytest.raises(UsageError, match="limit MAX_MATRIX_AXES"):
        raw_matrix(big)
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(UsageError, match="fifo"):  # does not block
        raw_matrix(tmp_path / "fifo.yaml")
    small = tmp_path / "small.yaml"
    small.write_text("matrix:\n  os: [a, b]\n")
    assert raw_matrix(small) == {"os": ["a", "b"]}
