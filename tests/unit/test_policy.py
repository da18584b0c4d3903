"""Decisions moved out of cli.py, outcomes no longer re-derived, journal readers on the model
(issue 14 points 4 and 5): each as a pure function, no engine."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from harness import journal_model, outcomes
from harness.distributed import client_targets, start_worker, worker_plan
from harness.engine.connection import TARGETS_ENV, Target
from harness.errors import UsageError
from harness.escalation.bundle import _built_tags, _summary
from harness.pytest_plugin import Lab
from harness.reports.manual import render
from harness.scenario.schema import Reproduce
from harness.verbs.gate import default_baseline, save_baseline_target
from harness.verbs.runs import _scenario_redactor, gc_engine_url

LOCAL = "unix:///var/run/docker.sock"
FAR = "tcp://127.0.0.1:2376"


@pytest.fixture(autouse=True)
def _no_targets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGETS_ENV, raising=False)


# -- lab worker: slots and the build/copy choice ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "own", "flag", "copy_from"),
    [
        (FAR, "build", None, None),  # builds on its own engine
        (FAR, "copy", None, LOCAL),  # the targets file says copy: from the local engine
        (FAR, "build", "copy", LOCAL),  # --images copy wins over the targets file
        (FAR, "copy", "build", None),  # --images build wins too
        (LOCAL, "copy", None, None),  # the worker's engine is the local one: nothing to copy
    ],
)
def test_worker_copies_images_only_from_another_engine(
    url: str, own: str, flag: str | None, copy_from: str | None
) -> None:
    target = Target(name="far", url=url, images=own)  # type: ignore[arg-type]
    got, source = worker_plan(target, slots=None, images=flag, local_url=LOCAL)
    assert source == copy_from
    assert got == target


def test_worker_slots_override_the_targets_file() -> None:
    target = Target(name="far", url=FAR, slots=2)
    got, _ = worker_plan(target, slots=5, images=None, local_url=LOCAL)
    assert (got.slots, target.slots) == (5, 2)


@pytest.mark.parametrize(
    ("slots", "images", "said"),
    [(0, None, "--slots must be at least 1"), (None, "pull", "--images 'pull': expected")],
)
def test_worker_refuses_bad_options(slots: int | None, images: str | None, said: str) -> None:
    with pytest.raises(UsageError, match=said) as err:
        worker_plan(Target(name="far", url=FAR), slots=slots, images=images, local_url=LOCAL)
    assert err.value.exit_code == outcomes.USAGE


def test_worker_needs_a_scheduler_before_any_engine() -> None:
    # an engine name that would not resolve: the scheduler is checked first
    with pytest.raises(UsageError, match="--scheduler ADDR is required"):
        start_worker("no-such-engine", None, "")


def test_cluster_targets_need_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--targets needs --cluster"):
        client_targets(None, tmp_path / "targets.yaml")
    client_targets(None, None)  # no cluster, no file: nothing to load


def test_cluster_targets_file_is_read_up_front(tmp_path: Path) -> None:
    bad = tmp_path / "targets.yaml"
    bad.write_text("engines: [{name: far}]\n")
    with pytest.raises(UsageError, match=r"targets.yaml: engines.0.url"):
        client_targets("127.0.0.1:8786", bad)


# -- lab gc --engine ----------------------------------------------------------------------------


def test_gc_engine_url(tmp_path: Path) -> None:
    assert gc_engine_url(None) is None
    assert gc_engine_url(FAR) == FAR
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"engines: [{{name: far, url: '{FAR}'}}]\n")
    assert gc_engine_url("far", targets) == FAR
    with pytest.raises(UsageError, match="no engine named 'near'"):
        gc_engine_url("near", targets)


# -- lab gate --save-baseline -------------------------------------------------------------------


def test_default_baseline() -> None:
    gate = Path("scenarios/gates/r2.yaml")
    assert default_baseline(gate, None) == Path("baselines/r2.json")
    assert default_baseline(gate, "results/r1.json") == Path("results/r1.json")


def test_save_baseline_target(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"  # not read when it does not decide
    assert save_baseline_target(missing, False, None) is None
    assert save_baseline_target(missing, True, Path("out.json")) == Path("out.json")
    gate = tmp_path / "r2.yaml"
    gate.write_text("gate: r2\nsuites: [{scenario: s.yaml}]\nbaseline: baselines/r1.json\n")
    assert save_baseline_target(gate, True, None) == Path("baselines/r1.json")
    gate.write_text("gate: r2\nsuites: [{scenario: s.yaml}]\n")
    assert save_baseline_target(gate, True, None) == Path("baselines/r2.json")


# -- outcomes the plugin and the scenario schema take from harness.outcomes ---------------------


@pytest.mark.parametrize(("code", "exit"), [(2, 2), (3, 3), (1, 3), (0, 3), (130, 3)])
def test_failure_exit(code: int, exit: int) -> None:
    assert outcomes.failure_exit(code) == exit


def test_scenario_expect_is_the_outcomes_literal() -> None:
    assert typing.get_args(outcomes.Expectation) == (outcomes.REPRODUCED, outcomes.NOT_REPRODUCED)
    assert Reproduce().expect == outcomes.NOT_REPRODUCED
    assert Reproduce(expect=outcomes.REPRODUCED).expect == outcomes.REPRODUCED
    with pytest.raises(ValueError, match="REPRODUCED"):
        Reproduce(expect=outcomes.ERROR)  # type: ignore[arg-type]


# -- journal readers on the model ---------------------------------------------------------------

JOURNAL = {
    "run": "r1",
    "scenario": "s",
    "source": "scenarios/gone.yaml",
    "topology": {
        "networks": [{"name": "net", "subnet": "10.89.0.0/24"}],
        "nodes": [{"name": "web", "lab": "nginx", "version": "1.22", "os": "bookworm"}],
    },
    "phases": [
        {"phase": "build", "images": {"web": "lab/nginx:abc"}},
        {"phase": "attempt-1", "error": "the engine went away"},
    ],
    "reproduction": {"verdict": "ERROR", "rate": "0/0", "reason": "attempt could not run"},
    "checks": [{"name": "up", "passed": True}, {"name": "tls", "passed": False}, {"name": "x"}],
}


def test_bundle_summary_and_tags_from_the_model() -> None:
    j = journal_model.parse(JOURNAL)
    s = _summary(j, {"verdict": "NOT_REPRODUCED"})
    assert (s["verdict"], s["rate"], s["reason"]) == ("ERROR", "0/0", "attempt could not run")
    assert s["checks"] == {"passed": 1, "failed": 2}  # a check without `passed` did not pass
    assert _built_tags(j) == {"web": "lab/nginx:abc"}
    empty = journal_model.Journal()
    got = _summary(empty, {"verdict": "REPRODUCED", "rate": "1/1"})
    assert (got["verdict"], got["rate"], got["checks"]) == (
        "REPRODUCED",
        "1/1",
        {"passed": 0, "failed": 0},
    )
    assert _built_tags(empty) == {}


def _run_folder(tmp_path: Path, journal: object) -> Path:
    folder = tmp_path / "s" / "r1"
    folder.mkdir(parents=True)
    run = {
        "run": "r1",
        "state": "up",
        "nodes": [{"name": "web", "addresses": {"net": "10.89.0.2"}}],
    }
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "journal.json").write_text(json.dumps(journal))
    return folder


def test_plugin_topology_from_the_model(tmp_path: Path) -> None:
    lab = Lab.from_folder(_run_folder(tmp_path, JOURNAL))
    web = lab.node("web")
    assert (web.lab, web.version, web.os, web.container) == (
        "nginx",
        "1.22",
        "bookworm",
        "lab-r1-web",
    )
    assert lab.networks["net"].subnet == "10.89.0.0/24"
    assert lab.networks["net"].addresses == {"web": "10.89.0.2"}


def test_plugin_without_a_journal_still_attaches(tmp_path: Path) -> None:
    lab = Lab.from_folder(_run_folder(tmp_path, ["not", "a", "journal"]))
    web = lab.node("web")
    assert (web.lab, web.version, web.os) == (None, None, None)
    assert lab.networks["net"].subnet is None


def test_scenario_redactor_reads_the_source_from_the_model(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path, JOURNAL)
    _, how = _scenario_redactor(folder)
    assert how == "detector rules only: the scenario 'scenarios/gone.yaml' is not there any more"
    (folder / "journal.json").write_text("{not json")
    _, how = _scenario_redactor(folder)
    assert how == "detector rules only: run.json names no scenario"


def test_manual_wording_from_outcomes() -> None:
    text = render(journal_model.parse(JOURNAL))
    assert "- attempt-1: symptom error" in text
    assert "- `up`: passed" in text
    assert "- `tls`: FAILED" in text
    assert "- `x`: FAILED" in text
    assert "gave **INCOMPLETE** (-): the run did not finish" in render(journal_model.Journal())
