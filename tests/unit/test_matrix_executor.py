"""The matrix verb's one copy of result handling, driven by a test-only executor that hands back
canned outcomes: no engine, no scheduler. What is proven here holds for the local threads and
the Dask executor alike, since both only report CellOutcomes (harness/verbs/executors.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.errors import InfraError
from harness.run.signals import SignalInterrupt
from harness.run.trust import Trust
from harness.scenario.catalog import load_catalog
from harness.scenario.problems import ScenarioInvalid
from harness.verbs import matrix
from harness.verbs.executors import CellOutcome, ExecutorInfo, PlannedCell, Record
from tests.unit.conftest import CATALOG_ROOT

# six cells: web 1.22 is made for debian-11 only and 1.25 for debian-12 only, so two are SKIP
SCENARIO = """\
scenario: canned-matrix
matrix:
  version: ["1.22", "1.24", "1.25"]
  os: [debian-11, debian-12]
topology:
  networks:
    lan: {}
  nodes:
    web: {lab: web, version: "${matrix.version}", os: "${matrix.os}", networks: [lan]}
reproduce:
  steps: [{id: s, on: web, run: "true"}]
  symptom: [{step: s, exit_code: 0}]
"""

HOST_CODE = SCENARIO + "configure:\n  - {playbook: playbooks/tls.yml, hosts: web}\n"

ORDER = [
    "version=1.22,os=debian-11",
    "version=1.22,os=debian-12",
    "version=1.24,os=debian-11",
    "version=1.24,os=debian-12",
    "version=1.25,os=debian-11",
    "version=1.25,os=debian-12",
]
SKIPPED = {"version=1.22,os=debian-12", "version=1.25,os=debian-11"}


def ran(verdict: str, checks_green: bool = True) -> Callable[[dict[str, Any]], CellOutcome]:
    """A cell whose run ended with `verdict` (the scenario expects NOT_REPRODUCED)."""

    def make(cell: dict[str, Any]) -> CellOutcome:
        result = {
            "verdict": verdict,
            "checks_green": checks_green,
            "rate": "0/1",
            "reason": f"ran to {verdict}",
            "checks": [{"name": "suite", "passed": checks_green, "output": "x"}],
            "run": f"run-{cell['version']}-{cell['os']}",
            "folder": None,
        }
        return CellOutcome(cell, result=result, expect="NOT_REPRODUCED", seconds=1.234)

    return make


def error(reason: str) -> Callable[[dict[str, Any]], CellOutcome]:
    return lambda cell: CellOutcome(cell, error=reason, seconds=0.5, extra={"engine": "e1"})


def interrupted(cell: dict[str, Any]) -> CellOutcome:
    return CellOutcome(cell, interrupted=True)


class Canned:
    """Reports the canned outcome of each cell it is given, in reverse (cells end in any
    order), then raises `then` or returns `lost`."""

    resumable: ClassVar[bool] = False

    def __init__(
        self,
        outcomes: dict[str, Callable[[dict[str, Any]], CellOutcome]],
        *,
        lost: str | None = None,
        then: BaseException | None = None,
    ) -> None:
        self.outcomes, self.lost, self.then = outcomes, lost, then
        self.given: list[str] = []
        self.calls: list[str] = []

    def open(self, matrix_id: str) -> ExecutorInfo:
        self.calls.append("open")
        return ExecutorInfo(header={"jobs": 7, "engine": "canned"}, event={"jobs": 7})

    def run(self, cells: Sequence[PlannedCell], record: Record) -> str | None:
        self.calls.append("run")
        self.given = [p.label for p in cells]
        for p in reversed(cells):
            if p.label in self.outcomes:
                record(self.outcomes[p.label](p.cell))
        if self.then is not None:
            raise self.then
        return self.lost

    def close(self) -> None:
        self.calls.append("close")


class CannedResumable(Canned):
    resumable: ClassVar[bool] = True


@pytest.fixture(autouse=True)
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "reports"
    monkeypatch.setenv("LABHARNESS_REPORTS", str(out))
    return out


def run(
    tmp_path: Path, executor: Canned, text: str = SCENARIO, **kwargs: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    events: list[dict[str, Any]] = []
    r = matrix.run_with(
        executor,
        path,
        root=CATALOG_ROOT,
        catalog=load_catalog(CATALOG_ROOT),
        on_event=events.append,
        **kwargs,
    )
    data = r.model_dump(mode="json")  # what --json prints
    on_disk = json.loads((Path(r.folder) / "results.json").read_text())
    assert {k: v for k, v in data.items() if k not in ("folder", "exit_code")} == on_disk
    return data, events


def by_label(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["label"]: c for c in r["cells"]}


def test_each_outcome_becomes_its_cell_word_in_plan_order_with_exit_1(tmp_path: Path) -> None:
    executor = Canned(
        {
            "version=1.22,os=debian-11": ran("NOT_REPRODUCED"),  # as expected: PASS
            "version=1.24,os=debian-11": ran("REPRODUCED"),  # the symptom: FAIL
            "version=1.24,os=debian-12": ran("NOT_REPRODUCED", checks_green=False),  # FAIL
            "version=1.25,os=debian-12": ran("ERROR"),  # never FAIL
        }
    )
    r, events = run(tmp_path, executor)
    assert executor.calls == ["open", "run", "close"]
    assert executor.given == sorted(set(ORDER) - SKIPPED)  # only cells that can be built
    assert [c["label"] for c in r["cells"]] == ORDER  # they ended in reverse
    cells = by_label(r)
    assert {k: c["status"] for k, c in cells.items()} == {
        "version=1.22,os=debian-11": "PASS",
        "version=1.22,os=debian-12": "SKIP",
        "version=1.24,os=debian-11": "FAIL",
        "version=1.24,os=debian-12": "FAIL",
        "version=1.25,os=debian-11": "SKIP",
        "version=1.25,os=debian-12": "ERROR",
    }
    for label in SKIPPED:
        assert "is not built for debian-1" in cells[label]["reason"]  # why, from validation
        assert set(cells[label]) == {"cell", "label", "status", "reason"}
    passed = cells["version=1.22,os=debian-11"]
    assert passed == {
        "cell": {"version": "1.22", "os": "debian-11"},
        "label": "version=1.22,os=debian-11",
        "status": "PASS",
        "verdict": "NOT_REPRODUCED",
        "expected": "NOT_REPRODUCED",
        "rate": "0/1",
        "reason": "ran to NOT_REPRODUCED",
        "checks": [{"name": "suite", "passed": True}],  # no output in the record
        "run": "run-1.22-debian-11",
        "folder": None,
        "seconds": 1.23,
    }
    assert r["summary"] == {"PASS": 1, "FAIL": 2, "ERROR": 1, "SKIP": 2}
    assert r["exit_code"] == 1 and r["interrupted"] is False
    # the header: the verb's fields and the executor's, no resume selection for this one
    assert r["jobs"] == 7 and r["engine"] == "canned" and r["scenario"] == "canned-matrix"
    assert "only" not in r and "resumed" not in r
    folder = Path(r["folder"])
    assert json.loads((folder / "results.json").read_text())["cells"] == r["cells"]
    assert (folder / "matrix.html").is_file()
    # the progress: the matrix, then one line per ended cell (SKIPs are not run, so no line)
    assert events[0] == {
        "event": "matrix",
        "matrix": r["matrix"],
        "folder": str(folder),
        "cells": 6,
        "jobs": 7,
    }
    assert events[1:] == [
        {"event": "cell", "cell": c, "state": cells[c]["status"], "seconds": 1.23}
        for c in reversed(ORDER)
        if c not in SKIPPED
    ]


def test_no_fail_and_no_error_exits_0_and_an_error_before_a_run_is_error(
    tmp_path: Path,
) -> None:
    ok = {label: ran("NOT_REPRODUCED") for label in ORDER if label not in SKIPPED}
    r, _ = run(tmp_path, Canned(ok))
    assert r["summary"] == {"PASS": 4, "FAIL": 0, "ERROR": 0, "SKIP": 2}
    assert r["exit_code"] == 0  # SKIP does not fail a matrix

    ok["version=1.24,os=debian-11"] = error("engine gone")
    r, events = run(tmp_path, Canned(ok), name="second")
    cell = by_label(r)["version=1.24,os=debian-11"]
    assert cell == {
        "cell": {"version": "1.24", "os": "debian-11"},
        "label": "version=1.24,os=debian-11",
        "status": "ERROR",
        "reason": "engine gone",
        "seconds": 0.5,
        "engine": "e1",  # the executor's own field
    }
    assert r["exit_code"] == 1
    line = {"event": "cell", "cell": "version=1.24,os=debian-11", "state": "ERROR"}
    assert {**line, "seconds": 0.5} in events


def test_an_interrupted_matrix_keeps_what_ended_and_says_what_never_ran(tmp_path: Path) -> None:
    executor = Canned(
        {
            "version=1.25,os=debian-12": ran("NOT_REPRODUCED"),
            "version=1.24,os=debian-12": interrupted,  # torn down mid-run
        },
        then=SignalInterrupt(15),
    )
    with pytest.raises(SignalInterrupt) as exc:
        run(tmp_path, executor, name="stopped")
    assert exc.value.signum == 15 and exc.value.exit_code == 143
    assert executor.calls == ["open", "run", "close"]
    data = json.loads(next(Path(tmp_path).rglob("stopped/results.json")).read_text())
    assert data["interrupted"] is True
    cells = {c["label"]: c for c in data["cells"]}
    assert [c["label"] for c in data["cells"]] == ORDER
    assert cells["version=1.25,os=debian-12"]["status"] == "PASS"
    for label in ("version=1.22,os=debian-11", "version=1.24,os=debian-11"):
        assert cells[label] == {
            "cell": cells[label]["cell"],
            "label": label,
            "status": "SKIP",
            "reason": "not run: interrupted",
        }
    # the interrupted cell is recorded once, as not run, never as finished
    assert cells["version=1.24,os=debian-12"]["reason"] == "not run: interrupted"
    assert data["summary"] == {"PASS": 1, "FAIL": 0, "ERROR": 0, "SKIP": 5}


def test_ctrl_c_is_signal_2(tmp_path: Path) -> None:
    with pytest.raises(SignalInterrupt) as exc:
        run(tmp_path, Canned({}, then=KeyboardInterrupt()))
    assert exc.value.exit_code == 130


def test_cells_the_infrastructure_lost_are_error_and_exit_3(tmp_path: Path) -> None:
    executor = Canned(
        {"version=1.22,os=debian-11": ran("REPRODUCED")}, lost="scheduler lost; rerun"
    )
    r, _ = run(tmp_path, executor)
    cells = by_label(r)
    assert cells["version=1.22,os=debian-11"]["status"] == "FAIL"
    for label in ("version=1.24,os=debian-11", "version=1.24,os=debian-12"):
        assert cells[label]["status"] == "ERROR"
        assert cells[label]["reason"] == "not run: scheduler lost; rerun"
    assert r["exit_code"] == 3  # an infrastructure error, not a product failure


def test_a_cell_no_executor_reported_is_error_never_a_silent_skip(tmp_path: Path) -> None:
    r, _ = run(tmp_path, Canned({"version=1.22,os=debian-11": ran("NOT_REPRODUCED")}))
    cells = by_label(r)
    assert cells["version=1.24,os=debian-11"]["status"] == "ERROR"
    assert cells["version=1.24,os=debian-11"]["reason"] == "not run: the executor never reported it"
    assert r["exit_code"] == 1 and r["interrupted"] is False


def test_resume_reruns_only_the_gaps_of_the_same_matrix(tmp_path: Path) -> None:
    first = CannedResumable(
        {
            "version=1.22,os=debian-11": ran("NOT_REPRODUCED"),
            "version=1.24,os=debian-11": ran("ERROR"),  # ERROR cells are run again
        },
        lost="cluster gone",
    )
    r1, events = run(tmp_path, first)
    assert r1["resumed"] is False and r1["only"] == {} and r1["params"] == {}
    assert events[0]["todo"] == 4
    second = CannedResumable({label: ran("REPRODUCED") for label in ORDER})
    r2, events = run(tmp_path, second, resume=True)
    assert r2["folder"] == r1["folder"] and r2["resumed"] is True
    assert sorted(second.given) == [
        "version=1.24,os=debian-11",
        "version=1.24,os=debian-12",
        "version=1.25,os=debian-12",
    ]
    assert events[0]["todo"] == 3
    cells = by_label(r2)
    assert [c["label"] for c in r2["cells"]] == ORDER
    assert cells["version=1.22,os=debian-11"]["status"] == "PASS"  # kept, not run again
    assert cells["version=1.24,os=debian-11"]["status"] == "FAIL"
    assert r2["exit_code"] == 1
    # another trust level never fills in this matrix's gaps
    third = CannedResumable({})
    r3, _ = run(tmp_path, third, resume=True, trust=Trust.of(untrusted=True, trust=True))
    assert r3["folder"] != r1["folder"] and r3["resumed"] is False


def test_resume_without_a_resumable_executor_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(matrix.UsageError, match="--resume needs --cluster"):
        run(tmp_path, Canned({}), resume=True)
    with pytest.raises(matrix.UsageError, match="--resume needs --cluster"):  # before planning
        matrix.run_matrix(tmp_path / "none.yaml", root=CATALOG_ROOT, resume=True)


def test_a_refused_matrix_never_opens_its_executor(tmp_path: Path, reports: Path) -> None:
    executor = Canned({})
    with pytest.raises(ScenarioInvalid, match="would run ansible-playbook"):
        run(tmp_path, executor, text=HOST_CODE, trust=Trust.of(untrusted=True, trust=False))
    assert executor.calls == [] and not reports.exists()


class NoEngine(Canned):
    def open(self, matrix_id: str) -> ExecutorInfo:
        raise InfraError("no engine answers")


def test_an_executor_that_cannot_open_leaves_no_folder(tmp_path: Path, reports: Path) -> None:
    with pytest.raises(InfraError) as exc:
        run(tmp_path, NoEngine({}))
    assert exc.value.exit_code == 3 and not reports.exists()
