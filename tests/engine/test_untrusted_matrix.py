"""An untrusted matrix against the real engine: what it is allowed (`run:` steps, inside the
nodes) still runs, every cell at the untrusted level; the same file with a playbook is refused
before any container (the refusal's other cases: tests/unit/test_trust_matrix.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_lab

pytestmark = pytest.mark.engine

RUN_ONLY = """\
scenario: untrusted-matrix-runs
matrix:
  word: [alpha, beta]
topology:
  networks: {lan: {}}
  nodes:
    box: {os: debian-12, networks: [lan], command: [sleep, infinity]}
configure:
  - {run: "echo ${matrix.word} > /tmp/word", on: box}
reproduce:
  expect: REPRODUCED
  steps: [{id: word, on: box, run: "cat /tmp/word"}]
  symptom: [{step: word, stdout: "^(alpha|beta)"}]
verify:
  - {run: "test -s /tmp/word", on: box}
"""

PLAYBOOK = "  - {playbook: playbooks/touch-host.yml}\n"


def project(tmp_path: Path, text: str) -> Path:
    """The repo's debian-12 environment (its image is reused) and one scenario."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "environments" / "debian-12", root / "environments" / "debian-12")
    (root / "labs").mkdir()
    (root / "playbooks").mkdir()
    (root / "playbooks" / "touch-host.yml").write_text("- hosts: localhost\n  tasks: []\n")
    (root / "scenarios").mkdir()
    (root / "scenarios" / "m.yaml").write_text(text)
    return root


def test_an_untrusted_matrix_of_run_steps_runs_every_cell_untrusted(
    docker_client: Any, tmp_path: Path, reports: Path, cleanup_runs: list[str]
) -> None:
    root = project(tmp_path, RUN_ONLY)
    scen = str(root / "scenarios" / "m.yaml")
    env = {"LABHARNESS_CONFIG": str(tmp_path / "none")}
    p = run_lab(
        "matrix", scen, "--untrusted", "--json", "--project", str(root), reports=reports, **env
    )
    r = json.loads(p.stdout)
    cleanup_runs.extend(c["run"] for c in r["cells"] if c.get("run"))
    assert p.returncode == 0, p.stderr
    assert r["summary"] == {"PASS": 2, "FAIL": 0, "ERROR": 0, "SKIP": 0}
    untrusted = {"level": "untrusted", "origin": "--untrusted", "override": False}
    saved = json.loads((Path(r["folder"]) / "results.json").read_text())
    assert saved["trust"] == untrusted
    for c in r["cells"]:
        assert c["verdict"] == "REPRODUCED"
        journal = json.loads((Path(c["folder"]) / "journal.json").read_text())
        assert journal["trust"] == untrusted  # every cell ran at the matrix's level
        assert nothing_left(docker_client, c["run"])

    # the same matrix with a playbook: refused before a folder or a container
    (root / "scenarios" / "m.yaml").write_text(
        RUN_ONLY.replace("configure:\n", "configure:\n" + PLAYBOOK)
    )
    before = sorted(reports.rglob("*"))
    refused = run_lab("matrix", scen, "--untrusted", "--project", str(root), reports=reports, **env)
    assert refused.returncode == 2, refused.stderr
    assert "m.yaml:9:16: configure playbook 'playbooks/touch-host.yml'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(reports.rglob("*")) == before
    flt = {"label": "labharness.scenario=untrusted-matrix-runs"}
    assert docker_client.containers.list(all=True, filters=flt, ignore_removed=True) == []


def test_cluster_workers_run_an_untrusted_matrix_untrusted(
    docker_client: Any, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    """The level crosses Dask: one real `lab worker` on this machine's engine runs each cell of an
    `--untrusted --cluster` matrix at the untrusted level (its journal says so)."""
    from tests.engine.conftest_cluster import HOST_ENGINE, Cluster, free_port

    root = project(tmp_path, RUN_ONLY)
    reports = tmp_path / "reports"
    reports.mkdir()
    cluster = Cluster(f"tcp://127.0.0.1:{free_port()}", reports)
    try:
        cluster.start_scheduler()
        cluster.start_worker("one", HOST_ENGINE, slots=2)
        cluster.wait_workers(1)
        p = run_lab(
            "matrix", str(root / "scenarios" / "m.yaml"), "--cluster", cluster.scheduler,
            "--untrusted", "--json", "--project", str(root), reports=reports,
        )  # fmt: skip
    finally:
        cluster.stop()
    r = json.loads(p.stdout)
    cleanup_runs.extend(c["run"] for c in r["cells"] if c.get("run"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert r["summary"] == {"PASS": 2, "FAIL": 0, "ERROR": 0, "SKIP": 0}
    untrusted = {"level": "untrusted", "origin": "--untrusted", "override": False}
    assert r["trust"] == untrusted
    for c in r["cells"]:
        journal = json.loads((Path(c["folder"]) / "journal.json").read_text())
        assert journal["trust"] == untrusted
        assert nothing_left(docker_client, c["run"])
