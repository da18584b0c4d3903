"""The verification's journal (harness/verification_model.py) and its writer (harness/verbs/
verification.py): verification.json names both runs by id and relative folder, carries both k/n
with their intervals, the overlay's definition and the resolved scenario's diff, is redacted like
the runs, and validates against the committed schema; ids and prefixes find the folder; the
diff (harness/scenario/diff.py) shows what a fix changed and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness import outcomes
from harness import verification_model as vm
from harness.errors import UsageError
from harness.run.result import RunResult
from harness.scenario.catalog import load_catalog
from harness.scenario.diff import changed_keys, scenario_diff
from harness.scenario.load import LoadedScenario, load_scenario
from harness.verbs.verification import (
    find_verification_folder,
    new_verification_id,
    write_verification,
)

REPO = Path(__file__).resolve().parents[2]
SECRET = "Sup3r-S3cret-Passw0rd-991"
SCENARIO = f"""
scenario: vf-unit
title: a fix for the unit test
params: {{token: {SECRET}}}
redact: ['{SECRET}']
topology:
  networks: {{lan: {{}}}}
  nodes:
    app: {{os: debian-12, networks: [lan], env: {{APP_TOKEN: "${{params.token}}", MODE: old}}}}
reproduce:
  steps: [{{id: probe, on: app, run: "echo probe"}}]
  symptom: [{{step: probe, stdout: BROKEN}}]
fixes:
  new-mode:
    kind: workaround
    description: >
      the app in its new mode
    topology: {{nodes: {{app: {{env: {{MODE: new}}}}}}}}
"""


def _load(tmp: Path, fix: str | None = None) -> LoadedScenario:
    path = tmp / "vf-unit.yaml"
    if not path.exists():
        path.write_text(SCENARIO)
    return load_scenario(path, root=REPO, catalog=load_catalog(REPO), fix=fix)


def _run(tmp: Path, run: str, role: str, observed: int, fix: str | None = None) -> RunResult:
    folder = tmp / "reports" / "vf-unit" / run
    folder.mkdir(parents=True)
    (folder / "journal.json").write_text(
        json.dumps({"run": run, "started": "2026-12-01T10:00:00+00:00", "source": "vf-unit.yaml"})
    )
    verdict = outcomes.REPRODUCED if observed else outcomes.NOT_REPRODUCED
    return RunResult.model_validate(
        {
            "run": run,
            "scenario": "vf-unit",
            "role": role,
            "fix": fix,
            "folder": str(folder),
            "engine": "fake",
            "verdict": verdict,
            "observed": observed,
            "attempts": 3,
            "planned": 3,
            "rate": f"{observed}/3",
            "reason": f"symptom observed in {observed} of 3 ({SECRET})",
            "attempt_results": [],
            "checks": [{"name": "app$ true", "passed": True, "exit_code": 0, "expected": 0}],
            "checks_green": True,
            "kept": False,
            "seconds": 1.0,
        }
    )


def _write(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp / "reports"))
    base, cand = _load(tmp), _load(tmp, "new-mode")
    written = write_verification(
        root=REPO,
        vid="verify-261201-100000-abcd",
        started="2026-12-01T10:00:00+00:00",
        base=base,
        cand=cand,
        fix_file=None,
        baseline=_run(tmp, "261201-100001-aaaa", "baseline", 3),
        candidate=_run(tmp, "261201-100002-bbbb", "candidate", 0, "new-mode"),
        verdict=outcomes.FIXED,
        reason="baseline 3/3, candidate 0/3, checks green",
        why=[],
        exit_code=0,
    )
    return written.folder


def test_the_verification_names_both_runs_and_the_overlay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write(tmp_path, monkeypatch)
    assert folder == tmp_path / "reports" / "vf-unit" / "verify-261201-100000-abcd"
    doc = vm.load(folder)
    assert doc is not None and doc.verdict == "FIXED" and doc.exit_code == 0
    assert doc.baseline.run == "261201-100001-aaaa"
    assert doc.baseline.folder == "../261201-100001-aaaa"
    assert (folder / doc.candidate.folder / "journal.json").is_file()
    assert doc.baseline.rate == "3/3" and doc.candidate.rate == "0/3"
    assert doc.overlay.fix == "new-mode" and doc.overlay.kind == "workaround"
    assert doc.overlay.description == "the app in its new mode"
    assert doc.overlay.changed == ["topology"]
    assert "-        MODE: old" in doc.overlay.diff and "+        MODE: new" in doc.overlay.diff
    assert doc.baseline.checks[0].passed is True


def test_the_verification_is_redacted_and_fits_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write(tmp_path, monkeypatch)
    text = (folder / vm.FILE).read_text()
    assert SECRET not in text
    schema = json.loads((REPO / vm.SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(text))


def test_committed_schema_is_current() -> None:
    assert (REPO / vm.SCHEMA_FILE).read_text() == vm.json_schema_text(), (
        "regenerate it: python -c 'from harness.verification_model import *; "
        'print(json_schema_text(), end="")\' > schemas/verification.schema.json'
    )


def test_ids_and_prefixes_find_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _write(tmp_path, monkeypatch)
    assert find_verification_folder("verify-261201-100000-abcd", REPO) == folder
    assert find_verification_folder("verify-261201-1000", REPO) == folder
    assert find_verification_folder(str(folder), REPO) == folder
    assert find_verification_folder("261201-100001-aaaa", REPO) is None  # a run, not ours
    with pytest.raises(UsageError, match="no verification"):
        find_verification_folder("verify-99", REPO)
    (folder.parent / "verify-261201-100000-abce").mkdir()
    (folder.parent / "verify-261201-100000-abce" / vm.FILE).write_text("{}")
    with pytest.raises(UsageError, match="ambiguous"):
        find_verification_folder("verify-261201-1000", REPO)
    assert vm.is_verification_id(new_verification_id())


def test_a_fix_that_changes_nothing_has_an_empty_diff(tmp_path: Path) -> None:
    base = _load(tmp_path)
    assert scenario_diff(base.raw, base.raw, names=("a", "b")) == ""
    assert changed_keys(base.raw, base.raw) == []
    assert "fixes" not in scenario_diff(base.raw, _load(tmp_path, "new-mode").raw, names=("a", "b"))


def test_the_reports_are_written_and_a_failing_one_keeps_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.verbs.verification as vv

    folder = _write(tmp_path, monkeypatch)
    assert {p.name for p in folder.iterdir()} >= {vm.FILE, "report.html", "junit.xml"}

    def broken(_folder: Path) -> None:
        raise RuntimeError("template bug")

    monkeypatch.setattr(vv, "write_verification_reports", broken)
    base, cand = _load(tmp_path), _load(tmp_path, "new-mode")
    written = write_verification(
        root=REPO,
        vid="verify-261201-100000-ef01",
        started="2026-12-01T10:00:00+00:00",
        base=base,
        cand=cand,
        fix_file=None,
        baseline=_run(tmp_path, "261201-100003-cccc", "baseline", 3),
        candidate=_run(tmp_path, "261201-100004-dddd", "candidate", 0, "new-mode"),
        verdict=outcomes.FIXED,
        reason="fixed",
        why=[],
        exit_code=0,
    )
    assert written.reports.errors == ["reports: template bug"]
    doc = vm.load(written.folder)
    assert doc is not None and doc.verdict == "FIXED"
    assert not (written.folder / "report.html").exists()
