"""Pure parts of matrix, gate and bisect: ordering, cell names, the gate file, the heatmap
(cell status and the gate comparison are in test_outcomes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.reports.heatmap import write_heatmap
from harness.verbs.bisect import order_values
from harness.verbs.gate import cell_key, load_gate
from harness.verbs.matrix import in_order
from harness.verbs.results import MatrixCell


def test_versions_order_as_versions_else_as_written() -> None:
    assert order_values(["1.10", "1.9", "1.2", "2.0"]) == ["1.2", "1.9", "1.10", "2.0"]
    assert order_values(["bullseye", "bookworm", "buster"]) == ["bullseye", "bookworm", "buster"]
    assert order_values([1.1, 1.0]) == [1.0, 1.1]


def test_cell_key_leaves_out_the_release_axis() -> None:
    cell = {"product": "1.4", "os": "debian-11"}
    assert cell_key("interop", cell, "product") == "interop[os=debian-11]"
    assert cell_key("interop", cell, None) == "interop[product=1.4,os=debian-11]"


def test_cells_in_matrix_order() -> None:
    cells = [MatrixCell(cell={}, label=x, status="PASS") for x in "bca"]
    assert [c.label for c in in_order(cells, ["a", "b", "c"])] == ["a", "b", "c"]


def test_bad_gate_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("gate: x\nsuites: []\nbaselin: y\n")
    with pytest.raises(UsageError) as err:
        load_gate(f)
    assert "suites" in err.value.message and "baselin" in err.value.message


def test_heatmap_axes_as_rows_and_columns(tmp_path: Path) -> None:
    data = {
        "scenario": "s<x>",
        "matrix": "m",
        "axes": {"product": ["1.0", "1.1"], "os": ["debian-11", "debian-12"]},
        "cells": [
            {
                "cell": {"product": "1.0", "os": "debian-11"},
                "label": "l1",
                "status": "PASS",
                "folder": str(tmp_path / "r1"),
            },
            {"cell": {"product": "1.1", "os": "debian-12"}, "label": "l2", "status": "FAIL"},
        ],
        "summary": {"PASS": 1, "FAIL": 1, "ERROR": 0, "SKIP": 0},
    }
    page = write_heatmap(tmp_path, data).read_text()
    assert "<th>os=debian-11</th><th>os=debian-12</th>" in page
    assert "<th>product=1.0</th>" in page and 'href="r1/report.html"' in page
    assert "s&lt;x&gt;" in page and "<x>" not in page
    assert "http" not in page
