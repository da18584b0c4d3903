"""`lab gate --untrusted`: the gate file's `baseline:` may not point outside the project or the
gate file's own folder (an untrusted gate would otherwise read any file on this machine into
its comparison and its results). No engine is reached: run_matrix is replaced by a fake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UsageError
from harness.verbs import gate
from harness.verbs.results import MatrixCell, MatrixResult
from tests.conftest import run_lab
from tests.unit.conftest import CATALOG_ROOT

SUITE = """\
scenario: gate-suite
topology:
  networks:
    lan: {}
  nodes:
    box: {os: debian-12, networks: [lan], command: sleep infinity}
reproduce:
  steps: [{id: s, on: box, run: "true"}]
  symptom: [{step: s, exit_code: 0}]
"""

# a results file the attacker wants read; its keys would show up as "removed" cells
LOOT = {"cells": [{"key": "host-secret-key-from-outside", "status": "PASS"}]}


def project(tmp_path: Path) -> Path:
    proj = tmp_path / "project"
    for sub in ("labs", "environments"):
        shutil.copytree(CATALOG_ROOT / sub, proj / sub)
    (proj / "suite.yaml").write_text(SUITE)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "results.json").write_text(json.dumps(LOOT))
    return proj


def gate_file(folder: Path, baseline: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gate.yaml"
    path.write_text(
        f"gate: g\nsuites:\n  - {{scenario: suite.yaml}}\nbaseline: {json.dumps(baseline)}\n"
    )
    return path


@pytest.fixture
def matrices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A fake run_matrix (one PASS cell); records which suites it ran."""
    ran: list[str] = []
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))

    def fake(scen: Path, **kwargs: Any) -> MatrixResult:
        ran.append(scen.name)
        return MatrixResult(
            matrix="matrix-x",
            scenario="gate-suite",
            source=str(scen),
            axes={},
            jobs=1,
            trust={},
            started="",
            cells=[MatrixCell(cell={}, label="", status="PASS")],
            summary={},
            seconds=0.0,
            ended="",
            interrupted=False,
            folder=str(tmp_path / "m"),
            exit_code=0,
        )

    monkeypatch.setattr(gate, "run_matrix", fake)
    return ran


def _outside_ways(tmp_path: Path, proj: Path) -> dict[str, str]:
    link = proj / "baselines" / "link.json"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(tmp_path / "elsewhere" / "results.json")
    return {
        "absolute": str(tmp_path / "elsewhere" / "results.json"),
        "dotdot": "../elsewhere/results.json",
        "symlink out": "baselines/link.json",
    }


def test_an_untrusted_gate_refuses_a_baseline_outside_located(
    tmp_path: Path, matrices: list[str]
) -> None:
    proj = project(tmp_path)
    for how, baseline in _outside_ways(tmp_path, proj).items():
        path = gate_file(proj, baseline)
        with pytest.raises(UsageError) as exc:
            gate.run_gate(path, root=proj, untrusted=True)
        msg = exc.value.message
        assert msg.startswith(f"{path}:4:11: baseline "), (how, msg)
        assert "outside the project and the gate file's folder" in msg, (how, msg)
        assert "untrusted" in msg and "--trust" in msg
        assert "host-secret-key" not in msg
        assert matrices == [], how  # refused before any suite ran
        assert not (tmp_path / "reports").exists()


def test_the_same_baseline_is_read_when_trusted_which_is_what_the_refusal_stops(
    tmp_path: Path, matrices: list[str]
) -> None:
    """The control: trusted (the engineer's own gate) or with --trust, the outside file is
    read, its cells reaching the comparison."""
    proj = project(tmp_path)
    path = gate_file(proj, str(tmp_path / "elsewhere" / "results.json"))
    for kwargs in ({}, {"untrusted": True, "trust": True}):
        result = gate.run_gate(path, root=proj, **kwargs)  # type: ignore[arg-type]
        assert [c["cell"] for c in result.removed] == ["host-secret-key-from-outside"]
    assert matrices == ["suite.yaml", "suite.yaml"]


def test_an_untrusted_gate_may_use_a_baseline_in_the_project_or_beside_itself(
    tmp_path: Path, matrices: list[str]
) -> None:
    proj = project(tmp_path)
    (proj / "baselines").mkdir()
    (proj / "baselines" / "last.json").write_text(json.dumps(LOOT))
    inside = gate_file(proj, "baselines/last.json")
    assert gate.run_gate(inside, root=proj, untrusted=True).removed
    # a gate file kept outside the project, its baseline beside it
    incoming = tmp_path / "incoming"
    beside = gate_file(incoming, "../incoming/base.json")
    (incoming / "base.json").write_text(json.dumps(LOOT))
    assert gate.run_gate(beside, root=proj, untrusted=True).removed
    assert matrices == ["suite.yaml", "suite.yaml"]


def test_lab_gate_untrusted_exits_2_with_the_location(tmp_path: Path) -> None:
    proj = project(tmp_path)
    path = gate_file(proj, str(tmp_path / "elsewhere" / "results.json"))
    reports = tmp_path / "reports"
    p = run_lab("gate", str(path), "--project", str(proj), "--untrusted", reports=reports)
    assert p.returncode == 2, p.stderr
    assert f"{path}:4:11: baseline " in p.stderr
    assert "Traceback" not in p.stderr and "host-secret-key" not in p.stdout + p.stderr
    assert not reports.exists() or not any(reports.iterdir())
