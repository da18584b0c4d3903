"""Matrix expansion with include/exclude, GitHub Actions style."""

from __future__ import annotations

from harness.scenario.matrix import cell_label, expand


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
    assert len(expand({"a": list(range(20)), "b": list(range(20))}, limit=256)) == 256


def test_malformed_axes_are_skipped() -> None:
    assert expand({"os": "a", "v": [[1]], "w": [1]}) == [{"w": 1}]


def test_cell_label() -> None:
    assert cell_label({"os": "debian-12", "tls": 1.3}) == "os=debian-12,tls=1.3"
