"""The journal model (harness/journal_model.py): every journal captured from a real run loads and
validates against the published JSON Schema; the committed schema is the generated one; a
journal the writer produces fits it; REPRODUCE.md built from journal.json alone says what the
old writer (built from the live run) said, recorded in tests/unit/journals/manual/; `lab report`
regenerates every report of a run folder from its journal."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from harness import journal_model as jm
from harness.cli import app
from harness.reports import write_reports
from harness.reports.manual import render, write_manual
from harness.run import faults
from harness.run.execute import topology_summary
from harness.run.journal import Journal
from harness.run.plan import plan_of
from harness.scenario.catalog import load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.resolved import Topology
from harness.scenario.schema import Reproduce
from tests.unit.reportkit import JOURNALS, journal, make_run

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.stem for p in JOURNALS.glob("*.json"))
# a sample journal and the repository scenario its run came from
RECORDED = {
    "tls-ansible": "scenarios/cases/tls-min-version.yaml",
    "cache-partition": "scenarios/cases/cache-partition.yaml",
    "lossy-intermittent": "scenarios/cases/lossy-link-intermittent.yaml",
    "tls-reproduce": "scenarios/cases/tls-protocol-mismatch.yaml",
}


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / jm.SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(data)]


# -- the schema ---------------------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    committed = (REPO / jm.SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == jm.json_schema_text(), (
        "regenerate it: python -c 'from harness.journal_model import *; "
        'print(json_schema_text(), end="")\' > schemas/journal.schema.json'
    )


def test_schema_is_versioned() -> None:
    schema = jm.json_schema()
    assert schema["schema_version"] == jm.SCHEMA_VERSION
    assert jm.SCHEMA_VERSION in schema["$id"]
    assert schema["properties"]["journal_version"]["default"] == jm.JOURNAL_VERSION


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_journal_loads_and_validates(name: str) -> None:
    data = journal(name)
    assert errors(data) == []
    model = jm.parse(data)
    assert model.run == data["run"] and len(model.phases) == len(data["phases"])
    # typed where the reports read: each phase its own kind, nothing lost on the way back
    assert all(p.kind == jm.phase_kind(p.phase) for p in model.phases)
    assert not any(isinstance(p, jm.OtherPhase) for p in model.phases)
    assert model.model_dump(mode="json", exclude_unset=True) == data


def test_partial_journals_validate() -> None:
    """What a run killed anywhere leaves: every field but a phase's name may be missing."""
    data = journal("tls-ansible")
    for n in range(len(data["phases"])):
        cut = copy.deepcopy(data)
        for key in ("ended", "result", "reproduction", "checks", "kept"):
            cut.pop(key)
        cut["phases"] = [{"phase": p["phase"]} for p in cut["phases"][: n + 1]]
        assert errors(cut) == []
        jm.parse(cut)
    assert errors({}) == [] and jm.parse({}).phases == []


@pytest.mark.parametrize(
    ("phase", "where"),
    [
        ({"phase": "build", "images": ["not", "a", "mapping"]}, "images"),
        ({"phase": "attempt-2", "steps": "oops"}, "steps"),
        ({"phase": "up-3", "nodes": [{"container": "no name"}]}, "name"),
        ({"phase": "verify", "checks": [{"name": "c", "passed": "maybe"}]}, "passed"),
        ({"start": "no phase name"}, "phase"),
    ],
)
def test_the_schema_and_the_model_refuse_a_mistyped_phase(
    phase: dict[str, Any], where: str
) -> None:
    data = {**journal("tls-reproduce"), "phases": [phase]}
    found = errors(data)
    assert found, "the schema accepted a mistyped phase"
    with pytest.raises(ValidationError, match=where):
        jm.parse(data)


def test_an_unknown_phase_and_unknown_keys_are_kept() -> None:
    data = {
        **journal("tls-reproduce"),
        "later_key": {"x": 1},
        "phases": [{"phase": "warmup", "whatever": [1, 2]}],
    }
    assert errors(data) == []
    model = jm.parse(data)
    assert isinstance(model.phases[0], jm.OtherPhase)
    assert model.model_dump(mode="json", exclude_unset=True) == data


def test_load_never_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"phases": "oops"}')
    (tmp_path / "junk.json").write_text("not json")
    for name in ("bad.json", "junk.json", "missing.json"):
        assert jm.load(tmp_path / name).phases == []


# -- a journal the writer produces, without an engine -----------------------------------------


def live_run(loaded: LoadedScenario, data: dict[str, Any], folder: Path) -> SimpleNamespace:
    """What the REPRODUCE.md writers read of a live run (harness.run.execute.Run), from a
    loaded repository scenario and the journal its run wrote."""
    raw = loaded.raw
    repro = raw.reproduce or Reproduce()
    needs = faults.nodes_needing_net_admin(raw.topology.impairments, repro.steps)
    topology: Topology = faults.with_net_admin(loaded.topology, needs)
    phases = data["phases"]
    images = next((p.get("images", {}) for p in phases if p["phase"] == "build"), {})
    up = next((p for p in phases if p["phase"] == "up"), {})
    addresses = {n["name"]: n["addresses"] for n in up.get("nodes", [])}
    return SimpleNamespace(
        raw=raw,
        topology=topology,
        catalog=load_catalog(REPO),
        root=REPO,
        images=images,
        run_id=data["run"],
        engine_version=data["engine"],
        loaded=loaded,
        journal=SimpleNamespace(data=data),
        live=SimpleNamespace(addresses=addresses, addresses6={}),
        folder=SimpleNamespace(path=folder),
        redactor=SimpleNamespace(text=lambda text: text),
    )


def recorded(name: str, tmp: Path) -> tuple[SimpleNamespace, dict[str, Any]]:
    """A sample journal with the header its scenario gives today (the run wrote it so)."""
    data = journal(name)
    loaded = load_scenario(
        REPO / RECORDED[name], root=REPO, catalog=load_catalog(REPO), fix=data.get("fix")
    )
    run = live_run(loaded, data, tmp)
    raw = loaded.raw
    data.update(
        title=raw.title,
        case=raw.case.model_dump(exclude_none=True) if raw.case else {},
        topology=topology_summary(run.topology, raw),
    )
    return run, data


def test_the_writer_produces_a_journal_that_fits(tmp_path: Path) -> None:
    run, data = recorded("tls-ansible", tmp_path)
    path = tmp_path / "journal.json"
    header = {k: data[k] for k in ("run", "scenario", "source", "role", "fix", "case", "engine")}
    j = Journal(path, {**header, "title": data["title"], "topology": data["topology"]})
    for phase in data["phases"]:
        with j.phase(phase["phase"]) as rec:
            rec.update({k: v for k, v in phase.items() if k not in ("phase", "start", "end")})
    j.set_plan(plan_of(run))
    j.set(result="REPRODUCED", reproduction=data["reproduction"], checks=data["checks"], kept=False)
    j.set(ended="2026-11-26T01:01:00+00:00")
    written = json.loads(path.read_text())
    assert errors(written) == []
    model = jm.parse(written)
    assert model.plan is not None and model.plan.inventory and model.plan.configure
    assert j.check()
    with pytest.raises(ValidationError):  # a mistyped header is refused at the start
        Journal(tmp_path / "bad.json", {"run": "r", "topology": {"nodes": "oops"}})


# -- REPRODUCE.md from the journal alone ----------------------------------------------------


GOLDEN_PROJECT = "/srv/labharness"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_reproduce_md_from_the_journal_says_what_the_live_run_said(
    tmp_path: Path, name: str
) -> None:
    """What the writer built from the live Run said, recorded before it was replaced."""
    expected = JOURNALS / "manual" / name
    run, data = recorded(name, tmp_path)
    data["plan"] = plan_of(run).model_dump(mode="json")
    data["plan"]["project"] = GOLDEN_PROJECT  # the recorded outputs name no real folder
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    (new_dir / "journal.json").write_text(json.dumps(data))
    new = write_manual(jm.load(new_dir / "journal.json"), new_dir).read_text()
    assert new == (expected / "REPRODUCE.md").read_text()
    assert (new_dir / "REPRODUCE.sh").read_text() == (expected / "REPRODUCE.sh").read_text()
    assert sorted(p.name for p in new_dir.iterdir()) == sorted(
        ["journal.json", *(p.name for p in expected.iterdir())]
    )
    inventory = expected / "REPRODUCE-inventory.yml"
    if inventory.is_file():  # the playbook scenario: the same inventory, by hand
        assert (new_dir / inventory.name).read_text() == inventory.read_text()
    assert "## 4. Configure" in new if name == "tls-ansible" else True


def test_reproduce_md_covers_every_kind_of_step(tmp_path: Path) -> None:
    """cache-partition: http steps, a partition fault, files, env: each in the text."""
    run, data = recorded("cache-partition", tmp_path)
    data["plan"] = plan_of(run).model_dump(mode="json")
    text = render(jm.parse(data))
    assert "http_step during client 20 <<'EOF'" in text
    assert "partition backend cache" in text and "heal backend cache" in text
    assert 'put_file proxy "$PROJECT/fixtures/cache-partition/proxy.conf"' in text
    assert "-e REDIS_HOST=cache" in text and "docker build -q -t" in text


def test_a_journal_without_a_plan_still_gets_its_steps(tmp_path: Path) -> None:
    """An older journal (no `plan`): what its header and phases allow, never an error."""
    model = jm.parse(journal("tls-ansible"))
    assert model.plan is None
    text = render(model)
    assert 'docker network create "$PREFIX-dmz"' in text
    assert 'ansible-playbook -i "$HERE/REPRODUCE-inventory.yml" -l proxy' in text
    assert "--tlsv1.3" in text and "- attempt-1: symptom observed" in text
    assert "is not on this engine (no recipe)" in text
    render(jm.Journal())  # an empty journal renders too


# -- `lab report RUN` regenerates every report ----------------------------------------------

FOUR = ("junit.xml", "allure-results", "report.html", "REPRODUCE.md")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "journal.json"
    }


def test_lab_report_regenerates_all_four_from_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, data = recorded("tls-ansible", tmp_path / "scratch")
    data["plan"] = plan_of(run).model_dump(mode="json")
    folder = make_run(tmp_path / "reports", "tls-ansible", data)
    (folder / "REPRODUCE.md").unlink()  # only what the run itself wrote, reports come after
    assert "errors" not in write_reports(folder)
    before = snapshot(folder)
    assert all((folder / f).exists() for f in FOUR)
    for f in FOUR:
        target = folder / f
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    (folder / "REPRODUCE-inventory.yml").unlink()
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report", data["run"]])
    assert res.exit_code == 0, res.output
    assert snapshot(folder) == before
    assert "REPRODUCE.md" in res.output
