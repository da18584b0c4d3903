"""`lab matrix`, `lab gate`, `lab bisect` and cluster cells at the run's trust level.

Every refusal happens before an engine, a scheduler, a run folder or a matrix folder exists, so
the engine (and the Dask client) are replaced by functions that fail the test if reached; each
refusal is paired with the same input at --trust, which gets past it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import distributed
from harness.engine import client as engine_client
from harness.engine.targets import Target
from harness.run.trust import TRUSTED, Trust
from harness.scenario.problems import ScenarioInvalid
from harness.verbs import bisect, gate, matrix
from tests.conftest import run_lab
from tests.unit.conftest import CATALOG_ROOT

HOST_CODE = """\
scenario: untrusted-matrix
matrix:
  os: [debian-11, debian-12]
topology:
  networks:
    lan: {}
  nodes:
    box: {os: "${matrix.os}", networks: [lan], command: sleep infinity}
configure:
  - {run: "echo ready > /tmp/ready", on: box}
  - {playbook: playbooks/tls.yml, hosts: box}
reproduce:
  steps: [{id: s, on: box, run: "cat /tmp/ready"}]
  symptom: [{step: s, stdout: ready}]
verify:
  - {run: "true", on: box}
  - checks/web_checks.py
"""

RUN_ONLY = """\
scenario: run-only-matrix
matrix:
  os: [debian-11, debian-12]
topology:
  networks:
    lan: {}
  nodes:
    box: {os: "${matrix.os}", networks: [lan], command: sleep infinity}
configure:
  - {run: "echo ready > /tmp/ready", on: box}
reproduce:
  steps: [{id: s, on: box, run: "cat /tmp/ready"}]
  symptom: [{step: s, stdout: ready}]
"""

CAPS = """\
scenario: caps-matrix
matrix:
  os: [debian-11, debian-12]
topology:
  networks:
    lan: {}
  nodes:
    box: {os: "${matrix.os}", networks: [lan], command: sleep infinity, cap_add: [SYS_PTRACE]}
reproduce:
  steps: [{id: s, on: box, run: "true"}]
  symptom: [{step: s, exit_code: 0}]
"""


class Reached(Exception):
    """The refusal let the run through to the engine (or the scheduler)."""


def reached(*args: Any, **kwargs: Any) -> Any:
    raise Reached


@pytest.fixture(autouse=True)
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No engine, an owned local config allowing SYS_PTRACE, reports in tmp_path."""
    monkeypatch.setattr(engine_client, "connect", reached)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("allow_capabilities: [SYS_PTRACE]\n")
    cfg.chmod(0o600)
    monkeypatch.setenv("LABHARNESS_CONFIG", str(cfg))
    reports = tmp_path / "reports"
    monkeypatch.setenv("LABHARNESS_REPORTS", str(reports))
    return reports


def scenario(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_untrusted_matrix_refuses_every_cells_host_code_once_located(
    tmp_path: Path, sealed: Path
) -> None:
    path = scenario(tmp_path, HOST_CODE)
    with pytest.raises(ScenarioInvalid) as exc:
        matrix.run_matrix(path, root=CATALOG_ROOT, untrusted=True)
    assert exc.value.exit_code == 2
    # two cells, the same playbook and suite: reported once each, at their lines
    assert [(p.line, p.col) for p in exc.value.problems] == [(11, 16), (17, 5)]
    assert "configure playbook 'playbooks/tls.yml' would run ansible-playbook" in str(exc.value)
    assert "verify suite 'checks/web_checks.py' would run pytest" in str(exc.value)
    assert all(p.file == str(path) for p in exc.value.problems)
    assert not sealed.exists()  # no matrix folder, no run folder
    with pytest.raises(Reached):  # --trust, and a trusted matrix, get past the check
        matrix.run_matrix(path, root=CATALOG_ROOT, untrusted=True, trust=True)
    with pytest.raises(Reached):
        matrix.run_matrix(path, root=CATALOG_ROOT)


def test_an_untrusted_matrix_with_only_run_steps_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(Reached):
        matrix.run_matrix(scenario(tmp_path, RUN_ONLY), root=CATALOG_ROOT, untrusted=True)


def test_an_untrusted_matrix_gets_only_the_default_capabilities(
    tmp_path: Path, sealed: Path
) -> None:
    path = scenario(tmp_path, CAPS)
    with pytest.raises(ScenarioInvalid) as exc:
        matrix.run_matrix(path, root=CATALOG_ROOT, untrusted=True)
    (problem,) = exc.value.problems
    assert (problem.line, problem.col) == (8, 83)  # the cap_add item
    assert problem.message.startswith("node 'box': SYS_PTRACE")
    assert "an untrusted run (a bundle, or --untrusted) gets only" in problem.message
    assert not sealed.exists()
    with pytest.raises(Reached):  # the engineer's own config applies to their own matrix
        matrix.run_matrix(path, root=CATALOG_ROOT)


def test_a_refused_cell_refuses_the_matrix_even_when_run_with_only(tmp_path: Path) -> None:
    with pytest.raises(ScenarioInvalid):
        matrix.run_matrix(
            scenario(tmp_path, HOST_CODE),
            root=CATALOG_ROOT,
            untrusted=True,
            only={"os": "debian-12"},
        )


def test_a_cluster_matrix_refuses_before_it_contacts_the_scheduler(
    tmp_path: Path, sealed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distributed as dask_distributed

    monkeypatch.setattr(dask_distributed, "Client", reached)
    path = scenario(tmp_path, HOST_CODE)
    with pytest.raises(ScenarioInvalid, match="would run ansible-playbook"):
        matrix.run_matrix(path, root=CATALOG_ROOT, cluster="tcp://127.0.0.1:9", untrusted=True)
    assert not sealed.exists()
    with pytest.raises(Reached):
        matrix.run_matrix(
            path, root=CATALOG_ROOT, cluster="tcp://127.0.0.1:9", untrusted=True, trust=True
        )


def test_the_trust_level_travels_in_the_cell_description() -> None:
    for level in (
        TRUSTED,
        Trust.of(untrusted=True, trust=False),
        Trust.of(untrusted=True, trust=True),
    ):
        spec = {"trust": distributed.trust_spec(level)}
        assert distributed.trust_from_spec(spec) == level


@pytest.mark.parametrize(
    "spec",
    [
        {},  # an older client, a hand-made task
        {"trust": None},
        {"trust": {"untrusted": "no", "override": False, "origin": ""}},
        {"trust": {"untrusted": False, "override": False}},
        {"trust": {"untrusted": False, "override": False, "origin": "", "extra": 1}},
    ],
)
def test_a_worker_never_guesses_a_trust_level_upward(spec: dict[str, Any]) -> None:
    level = distributed.trust_from_spec(spec)
    assert level.restricted
    assert level.origin == "cell description without a trust level"


def worker_spec(path: Path, trust: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "k",
        "cell": {"os": "debian-12"},
        "scenario": str(path),
        "root": str(CATALOG_ROOT),
        "params": None,
        "destroy": "always",
    }
    if trust is not None:
        spec["trust"] = trust
    return spec


def test_a_worker_runs_an_untrusted_cell_untrusted(
    tmp_path: Path, sealed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's own check (the client's was skipped: a forged or older task): the cell ends
    ERROR with the located refusal, and nothing reached the engine."""
    monkeypatch.setattr(distributed, "_TARGET", Target(name="w", url="tcp://127.0.0.1:9"))
    monkeypatch.setattr(distributed.engine, "answers", lambda url: True)
    path = scenario(tmp_path, HOST_CODE)
    untrusted = distributed.trust_spec(Trust.of(untrusted=True, trust=False))
    for spec in (worker_spec(path, untrusted), worker_spec(path, None)):
        out = distributed.run_cell(spec)
        rec = matrix.cell_record(out)
        assert rec is not None and rec.status == "ERROR" and not out.engine_lost
        assert f"{path}:11:16: configure playbook 'playbooks/tls.yml'" in str(out.reason)
    assert not sealed.exists()
    seen: list[Trust] = []

    def fake_run(loaded: Any, *, root: Path, catalog: Any, opts: Any) -> Any:
        seen.append(opts.trust)
        raise Reached

    monkeypatch.setattr(distributed, "run_scenario", fake_run)
    overridden = Trust.of(untrusted=True, trust=True)
    with pytest.raises(Reached):
        distributed.run_cell(worker_spec(path, distributed.trust_spec(overridden)))
    assert seen == [overridden]


GATE = """\
gate: g
suites:
  - {scenario: ok.yaml}
  - {scenario: host-code.yaml, only: {os: debian-12}}
on_missing_baseline: pass
"""


def gate_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project of the unit catalog's labs, one run-only suite and one with host code."""
    project = tmp_path / "project"
    for sub in ("labs", "environments", "playbooks", "checks"):
        shutil.copytree(CATALOG_ROOT / sub, project / sub)
    scenario(project, RUN_ONLY, "ok.yaml")
    scenario(project, HOST_CODE, "host-code.yaml")
    return project, scenario(project, GATE, "gate.yaml")


def test_an_untrusted_gate_refuses_before_its_first_suite_runs(
    tmp_path: Path, sealed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, gate_file = gate_project(tmp_path)
    calls: list[dict[str, Any]] = []

    def fake_matrix(scen: Path, **kwargs: Any) -> Any:
        calls.append({"scenario": scen.name, "untrusted": kwargs["untrusted"]})
        raise Reached

    monkeypatch.setattr(gate, "run_matrix", fake_matrix)
    with pytest.raises(ScenarioInvalid) as exc:
        gate.run_gate(gate_file, root=project, untrusted=True)
    assert [(p.line, p.col) for p in exc.value.problems] == [(11, 16), (17, 5)]
    assert all(p.file.endswith("host-code.yaml") for p in exc.value.problems)
    assert all(
        p.message.endswith("pass --trust to run it on this machine") for p in exc.value.problems
    )
    assert calls == [] and not sealed.exists()
    with pytest.raises(Reached):
        gate.run_gate(gate_file, root=project, untrusted=True, trust=True)
    assert calls == [{"scenario": "ok.yaml", "untrusted": True}]  # the level reaches the matrix


BISECT = """\
scenario: untrusted-bisect
params: {version: "1"}
topology:
  networks:
    lan: {}
  nodes:
    box: {os: debian-12, networks: [lan], command: sleep infinity}
configure:
  - {playbook: playbooks/tls.yml, hosts: box, vars: {v: "${params.version}"}}
reproduce:
  steps: [{id: s, on: box, run: "true"}]
  symptom: [{step: s, exit_code: 0}]
"""


def test_an_untrusted_bisect_refuses_before_its_first_probe(
    tmp_path: Path, sealed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = scenario(tmp_path, BISECT)
    seen: list[Trust] = []

    def fake_run(loaded: Any, *, root: Path, catalog: Any, opts: Any) -> Any:
        seen.append(opts.trust)
        raise Reached

    monkeypatch.setattr(bisect, "run_scenario", fake_run)
    args: dict[str, Any] = {"root": CATALOG_ROOT, "axis": "version", "values": ["1", "2", "3"]}
    with pytest.raises(ScenarioInvalid) as exc:
        bisect.run_bisect(path, untrusted=True, **args)
    ((p),) = exc.value.problems
    assert (p.line, p.col) == (9, 16) and "would run ansible-playbook" in p.message
    assert seen == [] and not sealed.exists()
    with pytest.raises(Reached):
        bisect.run_bisect(path, untrusted=True, trust=True, **args)
    assert seen == [Trust.of(untrusted=True, trust=True)]


@pytest.mark.parametrize(
    "argv",
    [
        ["matrix", "{m}"],
        ["matrix", "{m}", "--cluster", "tcp://127.0.0.1:9"],
        ["bisect", "{m}", "--axis", "os"],
    ],
)
def test_the_commands_take_untrusted_and_exit_2_located(
    tmp_path: Path, sealed: Path, argv: list[str]
) -> None:
    path = scenario(tmp_path, HOST_CODE)
    args = [a.format(m=path) for a in argv] + ["--project", str(CATALOG_ROOT), "--untrusted"]
    p = run_lab(*args, reports=sealed, LABHARNESS_CONFIG=str(tmp_path / "none"))
    assert p.returncode == 2, p.stderr
    assert f"{path}:11:16: configure playbook 'playbooks/tls.yml'" in p.stderr
    assert f"{path}:17:5: verify suite 'checks/web_checks.py'" in p.stderr
    assert "Traceback" not in p.stderr
    assert not sealed.exists() or not any(sealed.iterdir())


def test_gate_takes_untrusted_and_exits_2_located(tmp_path: Path, sealed: Path) -> None:
    project, gate_file = gate_project(tmp_path)
    p = run_lab("gate", str(gate_file), "--project", str(project), "--untrusted", reports=sealed)
    assert p.returncode == 2, p.stderr
    assert "host-code.yaml:11:16: configure playbook" in p.stderr
    assert "Traceback" not in p.stderr
    assert not sealed.exists() or not any(sealed.iterdir())
