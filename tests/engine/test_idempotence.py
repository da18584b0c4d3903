"""`idempotence: warn|fail` (Molecule's idempotence step) on the real engine with real Ansible: the
configure playbooks run a second time and exactly the task that changes the node on every pass
is listed, in the journal (fitting its schema), on the terminal and in report.html; with `fail`
it is also a failed check, in --json and junit.xml; `off` runs no second pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Failure, JUnitXml

from tests.conftest import ROOT, run_lab

pytestmark = [pytest.mark.engine]

SCENARIO = "tests/engine/scenarios/idempotence.yaml"
APPEND = "tests/engine/playbooks/not-idempotent.yml: append to the access notes on web"


def reproduce(mode: str, reports: Path, cleanup: list[str]) -> tuple[dict[str, Any], str]:
    p = run_lab(
        "reproduce",
        SCENARIO,
        "--param",
        f"mode={mode}",
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    cleanup.append(r["run"])
    assert (p.returncode, r["verdict"]) == (0, "REPRODUCED"), p.stderr  # appended twice
    return r, p.stderr


def journal(r: dict[str, Any]) -> dict[str, Any]:
    data = json.loads((Path(r["folder"]) / "journal.json").read_text())
    schema = json.loads((ROOT / "schemas/journal.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    return dict(data)


def phase(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in data["phases"] if p["phase"] == name), None)


def test_warn_lists_the_task_that_changes_again(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    r, stderr = reproduce("warn", reports, cleanup_runs)
    idem = phase(journal(r), "idempotence")
    assert idem is not None and idem["mode"] == "warn"
    assert [(c["task"], c["host"]) for c in idem["changed"]] == [
        ("append to the access notes", "web")
    ]
    assert [i["ident"] for i in idem["items"]] == ["configure-1-again"]
    assert r["checks"] == [] and r["checks_green"]  # a warning, not a failure
    assert f"idempotence warn: 1 task(s) changed again: {APPEND}" in stderr
    page = (Path(r["folder"]) / "report.html").read_text()
    assert "<h2>Idempotence</h2>" in page and f"<li>{APPEND}</li>" in page


def test_fail_makes_it_a_failed_check(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    r, _ = reproduce("fail", reports, cleanup_runs)
    (check,) = r["checks"]
    assert check["passed"] is False and not r["checks_green"]
    assert check["name"].startswith("idempotence") and APPEND in check["output"]
    cases = [c for s in JUnitXml.fromfile(str(Path(r["folder"]) / "junit.xml")) for c in s]
    idem = [c for c in cases if c.name.startswith("idempotence")]
    assert idem and any(isinstance(x, Failure) for x in idem[0].result)


def test_off_runs_no_second_pass(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab(
        "reproduce",
        SCENARIO,
        "--param",
        "mode=off",
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    assert r["verdict"] == "NOT_REPRODUCED", p.stderr  # configured once: appended once
    data = journal(r)
    assert phase(data, "idempotence") is None
    assert "<h2>Idempotence</h2>" not in (Path(r["folder"]) / "report.html").read_text()
