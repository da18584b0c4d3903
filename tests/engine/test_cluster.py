"""Scale-out against two real engines (the host's and one in its own netns) and a Dask cluster of
two workers, one per engine: a worker killed mid-matrix loses no cell and leaks nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import LAB, ROOT, lab_env, labelled, run_lab
from tests.engine.conftest_cluster import (
    CLUSTER_MATRIX,
    HOST_ENGINE,
    Cluster,
    engine_leftovers,
    matrix_images,
)
from tests.engine.second_engine import SecondEngine, copy_images, second_engine

INDEX_OK = {"PASS", "ERROR"}  # index pages PASS; a cell lost twice may be ERROR, never FAIL


def test_worker_killed_mid_matrix(
    cluster: Cluster, engine2: SecondEngine, docker_client: Any, tmp_path: Path
) -> None:
    cluster.start_worker("one", "unix:///var/run/docker.sock")
    cluster.start_worker("two", engine2.url, images="copy")
    cluster.wait_workers(2)
    client = _cluster_matrix(cluster)
    # kill the second engine's worker as soon as one of its cells has containers up
    _until_objects_on(engine2.url, "no cell ever started on the second engine")
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


def _cluster_matrix(cluster: Cluster) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LAB, "-q", "matrix", CLUSTER_MATRIX, "--cluster", cluster.scheduler, "--json"],
        cwd=ROOT, env=lab_env(cluster.reports), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _until_objects_on(url: str, why: str, timeout: float = 180) -> None:
    """Until something labelled is on the engine: a cell (or run) has come up there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not engine_leftovers(url):
        time.sleep(0.1)
    assert engine_leftovers(url), why


def _runs(cells: list[dict[str, Any]]) -> set[str]:
    """Every run a matrix's cells made, dead attempts included."""
    runs = {c["run"] for c in cells if c.get("run")}
    for c in cells:
        for a in c.get("attempts", []):
            runs |= set(a.get("runs") or [])
    return runs


def _none_left_on_host(cells: list[dict[str, Any]]) -> None:
    """Only these cells' runs: other tests may use the host engine at the same time."""
    from harness.engine.client import connect

    runs = _runs(cells)
    assert runs
    for run in runs:
        assert not any(labelled(connect(), run).values()), run


def _expected(c: dict[str, Any]) -> bool:
    """A cell ended as it should: its verdict, or ERROR (never a wrong verdict)."""
    want = "PASS" if c["label"].startswith("page=index") else "FAIL"
    return c["status"] in (want, "ERROR")


def test_gate_on_the_cluster_names_the_regression(
    cluster: Cluster, engine2: SecondEngine, tmp_path: Path
) -> None:
    cluster.start_worker("one", HOST_ENGINE)
    cluster.start_worker("two", engine2.url, images="copy")  # images moved with save/load
    cluster.wait_workers(2)
    p = run_lab(
        "gate", "scenarios/gates/release-1.4.yaml", "--cluster", cluster.scheduler, "--json",
        "--save-baseline", "--baseline-file", str(tmp_path / "release-1.4.json"),
        reports=cluster.reports,
    )  # fmt: skip
    assert p.stdout, p.stderr[-3000:]
    g = json.loads(p.stdout)
    assert (p.returncode, g["verdict"]) == (1, "FAIL"), p.stderr[-2000:]
    assert [x["cell"] for x in g["regressions"]] == ["sample-product-redis[os=debian-11]"]
    assert "regression: PASS in the baseline" in (Path(g["folder"]) / "junit.xml").read_text()
    saved = json.loads((tmp_path / "release-1.4.json").read_text())
    assert {c["key"]: c["status"] for c in saved["cells"]} == {
        "sample-product-redis[os=debian-11]": "FAIL",
        "sample-product-redis[os=debian-12]": "PASS",
        "sample-product-redis[os=debian-13]": "PASS",
    }
    assert engine_leftovers(engine2.url) == []
    _none_left_on_host(g["cells"])


def test_engine_killed_mid_matrix(cluster: Cluster) -> None:
    """The engine dies, not its worker: the cells it held are re-run on the other engine."""
    with second_engine(f"labdead{os.getpid()}") as dying:
        copy_images(dying.url, matrix_images())
        cluster.start_worker("one", HOST_ENGINE)
        cluster.start_worker("dying", dying.url)
        cluster.wait_workers(2)
        client = _cluster_matrix(cluster)
        _until_objects_on(dying.url, "no cell ever started on the dying engine")
        pid = dying.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        out, err = client.communicate(timeout=600)
        assert cluster.workers["dying"].poll() is None, "the worker should outlive its engine"
    r = json.loads(out)
    assert len(r["cells"]) == 6, err[-2000:]
    assert all(_expected(c) for c in r["cells"]), r["cells"]
    rerun = [c for c in r["cells"] if len(c.get("attempts", [])) == 2]
    assert rerun, "no cell of the dead engine was re-run"
    for c in rerun:
        first, second = c["attempts"]
        assert dying.url in first["engine"] and "lost" in first["error"], first
        assert "lab gc --engine" in str(first.get("cleaned")), first  # said how to clean up
        assert second["engine"] == HOST_ENGINE and c["status"] != "ERROR", c
    assert sum(c["status"] == "ERROR" for c in r["cells"]) == 0
    _none_left_on_host(r["cells"])


def test_scheduler_killed_mid_matrix_then_resume(cluster: Cluster) -> None:
    cluster.start_worker("one", HOST_ENGINE)
    cluster.wait_workers(1)
    client = _cluster_matrix(cluster)
    results: list[Path] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until at least one cell has finished and been saved
        results = list(cluster.reports.glob("cluster-small/matrix-*/results.json"))
        if results and json.loads(results[0].read_text() or "{}").get("cells"):
            break
        time.sleep(0.2)
    assert cluster.scheduler_proc is not None
    cluster.scheduler_proc.send_signal(signal.SIGKILL)
    out, err = client.communicate(timeout=300)
    assert out, err[-3000:]
    r = json.loads(out)
    assert client.returncode == 3, err[-2000:]  # an infrastructure error, results kept
    finished = [c for c in r["cells"] if c["status"] in ("PASS", "FAIL")]
    missing = [c for c in r["cells"] if c["status"] == "ERROR"]
    assert finished and missing, r["cells"]
    assert all(_expected(c) for c in finished)
    assert all("scheduler lost" in c["reason"] and "--resume" in c["reason"] for c in missing)
    # the orphaned worker ends; a new scheduler and worker finish the job with --resume
    cluster.workers["one"].wait(120)
    cluster.start_scheduler()
    cluster.start_worker("one-again", HOST_ENGINE)
    cluster.wait_workers(1)
    p = run_lab(
        "-q", "matrix", CLUSTER_MATRIX, "--cluster", cluster.scheduler, "--resume", "--json",
        reports=cluster.reports,
    )  # fmt: skip
    again = json.loads(p.stdout)
    assert again["folder"] == r["folder"] and again["resumed"], p.stderr[-2000:]
    assert len(again["cells"]) == 6 and all(_expected(c) for c in again["cells"])
    assert {c["status"] for c in again["cells"]} <= {"PASS", "FAIL"}
    reran = {c["label"] for c in again["cells"]} - {c["label"] for c in finished}
    assert reran == {c["label"] for c in missing}
    kept = {c["label"]: c["run"] for c in finished}
    assert all(c["run"] == kept[c["label"]] for c in again["cells"] if c["label"] in kept)
    _none_left_on_host(again["cells"])


def test_gc_engine_collects_a_dead_run_on_another_engine(
    engine2: SecondEngine, tmp_path: Path
) -> None:
    """`lab gc --engine URL`: a run killed with SIGKILL on the second engine is collected there,
    from the host, through the CLI."""
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {**lab_env(reports), "DOCKER_HOST": engine2.url}
    p = subprocess.Popen(
        [*LAB, "-q", "reproduce", CLUSTER_MATRIX, "--cell", "page=index.html?a", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _until_objects_on(engine2.url, "the run never came up on the second engine")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    left = engine_leftovers(engine2.url)
    assert left
    run = {(o.attrs.get("Labels") or o.attrs["Config"]["Labels"])["labharness.run"] for o in left}
    dry = run_lab("gc", "--engine", engine2.url, "--dry-run", "--json", reports=reports)
    assert dry.returncode == 0 and {x["run"] for x in json.loads(dry.stdout)} == run
    assert engine_leftovers(engine2.url), "--dry-run removed something"
    gc = run_lab("gc", "--engine", engine2.url, "--json", reports=reports)
    assert gc.returncode == 0, gc.stderr
    assert {x["run"] for x in json.loads(gc.stdout)} == run
    assert engine_leftovers(engine2.url) == []


def test_client_killed_mid_matrix_then_resume(cluster: Cluster) -> None:
    """The client dies (SIGKILL): what finished is in results.json; the workers tear their
    cells down; `--resume` runs only the rest."""
    cluster.start_worker("one", HOST_ENGINE)
    cluster.wait_workers(1)
    client = _cluster_matrix(cluster)
    saved: list[dict[str, Any]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not saved:
        for res in cluster.reports.glob("cluster-small/matrix-*/results.json"):
            saved = json.loads(res.read_text() or "{}").get("cells", [])
        time.sleep(0.2)
    assert saved, "no cell finished"
    client.send_signal(signal.SIGKILL)
    client.wait(30)
    results = next(cluster.reports.glob("cluster-small/matrix-*/results.json"))
    before = {c["label"]: c for c in json.loads(results.read_text())["cells"]}
    assert before and all(_expected(c) for c in before.values())
    p = run_lab(
        "-q", "matrix", CLUSTER_MATRIX, "--cluster", cluster.scheduler, "--resume", "--json",
        reports=cluster.reports,
    )  # fmt: skip
    again = json.loads(p.stdout)
    assert again["resumed"] and Path(again["folder"]) == results.parent, p.stderr[-2000:]
    assert len(again["cells"]) == 6 and {c["status"] for c in again["cells"]} <= {"PASS", "FAIL"}
    assert all(_expected(c) for c in again["cells"])
    for c in again["cells"]:  # finished before the kill: kept as they were, not run again
        if c["label"] in before:
            assert c["run"] == before[c["label"]]["run"]
    _none_left_on_host(again["cells"])

    # the cell that was running when the client died finished on its worker and tore down
    def stray() -> list[Any]:
        return [
            o for o in engine_leftovers(HOST_ENGINE)
            if (o.attrs.get("Labels") or o.attrs["Config"]["Labels"]).get("labharness.scenario")
            == "cluster-small"
        ]  # fmt: skip

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stray():
        time.sleep(0.5)
    assert stray() == []
