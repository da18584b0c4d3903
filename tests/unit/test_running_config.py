"""Running configurations (harness/run/running_config.py): a lab that says how (`running_config`
in lab.yaml) has its node's configuration in effect dumped after configure (`config`) and at the
end (`config-end`), redacted, into artifacts/<node>/running-config/; a node that did not start
is skipped with why; a failing dump is recorded, never the run's failure. The verification report
compares the two sides' last dumps as a diff (harness/reports/running_configs.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import journal_model as jm
from harness.engine.fake import FakeEngine, ok
from harness.reports.running_configs import compare
from harness.run.execute import Run, RunOptions
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from tests.unit.conftest import CATALOG_ROOT

SECRET = "Pw-9f8e7d6c5b4a3"
SCENARIO = f"""
scenario: runconf
params: {{admin_password: {SECRET}}}
topology:
  networks: {{lan: {{}}}}
  nodes:
    web:
      lab: web
      version: "1.25"
      networks: [lan]
      env: {{ADMIN_PASSWORD: "${{params.admin_password}}"}}
    client: {{lab: client, version: "7.88", networks: [lan]}}
reproduce:
  steps: [{{id: get, on: client, run: "get-web"}}]
  symptom: [{{step: get, stdout: BROKEN}}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(CATALOG_ROOT, root)
    lab = root / "labs" / "web" / "lab.yaml"
    lab.write_text(lab.read_text() + "running_config: {command: dump-web-config, timeout: 5}\n")
    for name in ("web", "client"):  # the fake engine plans the images: a build context each
        (root / "labs" / name / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM $BASE_IMAGE\n")
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    return root


def _run(project: Path, fake: FakeEngine) -> Run:
    path = project / "runconf.yaml"
    path.write_text(SCENARIO)
    catalog = load_catalog(project)
    loaded = load_scenario(path, root=project, catalog=catalog)
    return Run(loaded, project, catalog, RunOptions(destroy="always"), engine=fake)


def test_dumped_after_configure_and_at_the_end_redacted(project: Path) -> None:
    fake = FakeEngine()
    fake.on_exec("web", "dump-web-config", [ok("workers 2\n"), ok(f"workers 4\nadmin {SECRET}\n")])
    fake.on_exec("client", "get-web", ok("BROKEN"))
    run = _run(project, fake)
    run.execute()
    j = jm.load(run.folder.path / "journal.json")
    names = [p.phase for p in j.phases]
    assert names.index("up") < names.index("config") < names.index("attempt-1")
    assert names.index("attempt-1") < names.index("config-end") < names.index("collect")
    config = j.phase("config")
    assert isinstance(config, jm.ConfigPhase)
    (dump,) = config.dumps  # the client's lab says nothing: only web
    assert (dump.node, dump.when, dump.exit_code) == ("web", "after-configure", 0)
    assert (run.folder.path / dump.file).read_text() == "workers 2\n" if dump.file else False
    end = run.folder.path / "artifacts/web/running-config/at-end.txt"
    assert "workers 4" in end.read_text() and SECRET not in end.read_text()


def test_a_failing_dump_is_recorded_and_the_run_goes_on(project: Path) -> None:
    fake = FakeEngine()
    fake.on_exec("web", "dump-web-config", ok("", "dump-web-config: not found", exit_code=127))
    fake.on_exec("client", "get-web", ok("BROKEN"))
    run = _run(project, fake)
    result = run.execute()
    assert result.verdict == "REPRODUCED"
    phase = json.loads((run.folder.path / "journal.json").read_text())["phases"]
    dumps = next(p for p in phase if p["phase"] == "config")["dumps"]
    assert dumps[0]["exit_code"] == 127


def _side(tmp: Path, name: str, dumps: list[tuple[str, str | None]]) -> tuple[Path, jm.Journal]:
    folder = tmp / name
    records = []
    for node, text in dumps:
        if text is None:
            records.append({"node": node, "lab": "web", "when": "at-end", "skipped": "exited"})
            continue
        rel = f"artifacts/{node}/running-config/at-end.txt"
        (folder / rel).parent.mkdir(parents=True)
        (folder / rel).write_text(text)
        records.append({"node": node, "lab": "web", "when": "at-end", "file": rel})
    journal = jm.parse({"phases": [{"phase": "config-end", "dumps": records}]})
    return folder, journal


def test_the_two_sides_compare_node_by_node(tmp_path: Path) -> None:
    base = _side(tmp_path, "b", [("web", "a 1\nb 2\n"), ("db", "x\n"), ("cache", None)])
    cand = _side(tmp_path, "c", [("web", "a 1\nb 3\n"), ("db", "x\n"), ("cache", "m\n")])
    rows = {r.node: r for r in compare(base, cand)}
    assert "-b 2" in rows["web"].diff and "+b 3" in rows["web"].diff and not rows["web"].same
    assert rows["db"].same and rows["db"].diff == []
    assert rows["cache"].missing == "baseline: exited"
    assert compare((tmp_path, None), cand)[0].missing == "baseline: not dumped"
