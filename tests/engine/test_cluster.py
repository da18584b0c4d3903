"""Scale-out against two real engines (the host's and one in its own netns) and a Dask cluster of
two workers, one per engine: a worker killed mid-matrix loses no cell and leaks nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import LAB, ROOT, lab_env, labelled
from tests.engine.conftest_cluster import CLUSTER_MATRIX, Cluster, engine_leftovers
from tests.engine.second_engine import SecondEngine

INDEX_OK = {"PASS", "ERROR"}  # index pages PASS; a cell lost twice may be ERROR, never FAIL


def test_worker_killed_mid_matrix(
    cluster: Cluster, engine2: SecondEngine, docker_client: Any, tmp_path: Path
) -> None:
    cluster.start_worker("one", "unix:///var/run/docker.sock")
    cluster.start_worker("two", engine2.url, images="copy")
    cluster.wait_workers(2)
    client = subprocess.Popen(
        [*LAB, "-q", "matrix", CLUSTER_MATRIX, "--cluster", cluster.scheduler, "--json"],
        cwd=ROOT, env=lab_env(cluster.reports), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # kill the second engine's worker as soon as one of its cells has containers up
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not engine_leftovers(engine2.url):
        time.sleep(0.2)
    assert engine_leftovers(engine2.url), "no cell ever started on the second engine"
    cluster.workers["two"].send_signal(signal.SIGKILL)
    out, err = client.communicate(timeout=600)
    r = json.loads(out)
    by = {c["label"]: c for c in r["cells"]}
    assert len(by) == 6, err[-2000:]
    for label, c in by.items():
        if label.startswith("page=index"):
            assert c["status"] in INDEX_OK, c
        else:
            assert c["status"] in {"FAIL", "ERROR"}, c
    rerun = [c for c in r["cells"] if len(c.get("attempts", [])) == 2]
    assert rerun, "the killed worker's cell was not re-run"
    for c in rerun:
        assert "worker lost" in c["attempts"][0]["error"]
        assert c["attempts"][1]["engine"] == "unix:///var/run/docker.sock" or c["status"] == "ERROR"
    assert sum(c["status"] == "ERROR" for c in r["cells"]) <= len(rerun)
    # nothing leaked: the dead attempt's containers were removed from the surviving engine 2
    assert engine_leftovers(engine2.url) == []
    for c in r["cells"]:
        if c.get("run"):
            assert not any(labelled(docker_client, c["run"]).values())
    results = json.loads((Path(r["folder"]) / "results.json").read_text())
    assert results["summary"] == r["summary"]

    # --resume runs only what is missing: drop two cells from results.json, run again
    folder = Path(r["folder"])
    kept = [
        c for c in results["cells"] if c["label"] not in ("page=index.html?a", "page=missing.html")
    ]
    (folder / "results.json").write_text(json.dumps({**results, "cells": kept}))
    p = subprocess.run(
        [*LAB, "-q", "matrix", CLUSTER_MATRIX, "--cluster", cluster.scheduler, "--resume",
         "--json"],
        cwd=ROOT, env=lab_env(cluster.reports), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    again = json.loads(p.stdout)
    assert again["folder"] == r["folder"] and again["resumed"]
    by2 = {c["label"]: c for c in again["cells"]}
    assert len(by2) == 6
    assert by2["page=missing.html"]["status"] == "FAIL"
    assert by2["page=index.html?a"]["status"] == "PASS"
    fresh = {c["run"] for c in again["cells"]} - {c.get("run") for c in kept}
    assert len(fresh) == 2
