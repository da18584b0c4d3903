"""`lab matrix` against the real engine: statuses, parallel cells, results kept on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import LAB, ROOT, lab_env, nothing_left, run_lab

SMALL = "tests/engine/matrices/matrix-small.yaml"  # some cells unbuildable on purpose: SKIP


def test_matrix_table_statuses_and_outputs(docker_client: Any, reports: Path) -> None:
    p = run_lab("matrix", SMALL, "-j", "2", "--json", reports=reports)
    r = json.loads(p.stdout)
    schema = json.loads((ROOT / "schemas/results/matrix.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(r)  # the published schema holds
    assert p.returncode == 1  # two cells FAIL
    by = {c["label"]: c for c in r["cells"]}
    assert by["nginx=1.18,os=debian-11,page=index.html"]["status"] == "PASS"
    assert by["nginx=1.22,os=debian-12,page=index.html"]["status"] == "PASS"
    assert by["nginx=1.18,os=debian-11,page=missing.html"]["status"] == "FAIL"
    assert by["nginx=1.22,os=debian-12,page=missing.html"]["status"] == "FAIL"
    skipped = [c for c in r["cells"] if c["status"] == "SKIP"]
    assert len(skipped) == 3 and all("is not built for" in c["reason"] for c in skipped)
    assert "nginx=1.22,os=debian-11,page=missing.html" not in by  # excluded
    assert r["summary"] == {"PASS": 2, "FAIL": 2, "ERROR": 0, "SKIP": 3}
    folder = Path(r["folder"])
    assert json.loads((folder / "results.json").read_text())["summary"] == r["summary"]
    heat = (folder / "matrix.html").read_text()
    assert heat.count("report.html") == 4
    for c in r["cells"]:
        if c.get("run"):
            assert nothing_left(docker_client, c["run"])


def test_ctrl_c_tears_running_cells_down_and_keeps_finished_ones(
    docker_client: Any, reports: Path
) -> None:
    proc = subprocess.Popen(
        [*LAB, "matrix", SMALL, "-j", "1"],
        cwd=ROOT,
        env=lab_env(reports),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(
        target=lambda: [lines.append(x.rstrip()) for x in proc.stderr or []], daemon=True
    ).start()
    from tests.engine.test_signals import wait_for_line

    wait_for_line(proc, lines, ": PASS in")  # one cell finished
    wait_for_line(proc, lines, "[nginx=1.18,os=debian-11,page=missing.html] - up")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130
    results = next(reports.glob("matrix-small/matrix-*/results.json"))
    data = json.loads(results.read_text())
    assert data["interrupted"] is True
    statuses = [c["status"] for c in data["cells"]]
    assert "PASS" in statuses  # the finished cell is kept
    assert any(c.get("reason", "").startswith(("interrupted", "not run")) for c in data["cells"])
    cell_runs = list(reports.glob("matrix-small/2*"))
    assert cell_runs  # the cells that ran have folders, and nothing of theirs is left
    for folder in cell_runs:
        assert nothing_left(docker_client, folder.name)


def test_reproduce_one_cell(reports: Path) -> None:
    p = run_lab(
        "reproduce",
        SMALL,
        "--cell",
        "nginx=1.18",
        "--cell",
        "os=debian-11",
        "--cell",
        "page=missing.html",
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    assert (p.returncode, r["verdict"], r["role"]) == (0, "REPRODUCED", "cell")
    bad = run_lab("reproduce", SMALL, "--cell", "nginx=9.9", reports=reports)
    assert bad.returncode == 2 and "no cell" in bad.stderr
