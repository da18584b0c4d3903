"""Every malformed scenario states its own expected problems in `# expect: LINE:COL: text` lines;
validate_file must report exactly those (same positions, message containing the text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario, validate_file
from harness.scenario.problems import ScenarioInvalid

MALFORMED = Path(__file__).resolve().parents[1] / "scenarios" / "malformed"
FILES = sorted(MALFORMED.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")


def expectations(path: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = EXPECT.match(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3).strip()))
    return out


def test_there_are_enough_malformed_files() -> None:
    assert len(FILES) >= 30
    assert all(expectations(f) for f in FILES), "every malformed file states its expectation"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_malformed_file_reports_expected_problems(
    path: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    expected = expectations(path)
    problems = validate_file(path, root=catalog_root, catalog=test_catalog)
    got = [(p.line, p.col, p.message) for p in problems]
    assert len(got) == len(expected), f"expected {expected}\ngot {got}"
    for (line, col, text), (gl, gc, gmsg) in zip(expected, got, strict=True):
        assert (gl, gc) == (line, col), f"{text!r} expected at {line}:{col}, got {gl}:{gc}"
        assert text in gmsg
    for p in problems:
        assert p.file == str(path) or p.file.endswith(path.name)
        assert str(p).startswith(f"{p.file}:{p.line}:{p.col}: ")


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_load_scenario_raises_scenario_invalid(
    path: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    cell = None
    for _, _, text in expectations(path):
        if m := re.search(r"\(matrix cell (.+)\)$", text):  # only that cell is wrong
            cell = dict(kv.split("=", 1) for kv in m.group(1).split(","))
    with pytest.raises(ScenarioInvalid) as info:
        load_scenario(path, root=catalog_root, catalog=test_catalog, cell=cell)
    assert info.value.problems
    assert info.value.exit_code == 2


def test_several_problems_are_all_reported(catalog_root: Path, test_catalog: Catalog) -> None:
    path = MALFORMED / "several-problems.yaml"
    problems = validate_file(path, root=catalog_root, catalog=test_catalog)
    messages = " | ".join(p.message for p in problems)
    for fragment in (
        "not DNS-safe",
        "host bits set",
        "unknown lab 'wbe'; did you mean 'web'?",
        "unknown key 'healthz'; did you mean 'health'?",
        "unknown os 'debian-13'",
        "expected a number >= 1",
    ):
        assert fragment in messages
    assert len({(p.line, p.col) for p in problems}) == len(problems) == 6
    assert problems == sorted(problems)


def test_yaml_syntax_error_is_one_located_problem(
    catalog_root: Path, test_catalog: Catalog
) -> None:
    problems = validate_file(
        MALFORMED / "yaml-syntax.yaml", root=catalog_root, catalog=test_catalog
    )
    assert len(problems) == 1
    assert problems[0].message.startswith("invalid YAML")
