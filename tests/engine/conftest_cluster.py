"""Fixtures for the scale-out tests: a second Docker engine in its own netns, a Dask scheduler,
and one `lab worker` per engine. Everything started here is stopped and removed at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB, ROOT, lab_env
from tests.engine.second_engine import SecondEngine, copy_images, second_engine

CLUSTER_MATRIX = "tests/engine/matrices/cluster.yaml"


def matrix_images(path: str = CLUSTER_MATRIX) -> list[str]:
    from harness.engine.client import connect
    from harness.engine.images import ensure_images
    from harness.scenario.catalog import load_catalog
    from harness.scenario.load import load_scenario
    from harness.scenario.matrix import expand
    from harness.verbs.matrix import raw_matrix

    catalog = load_catalog(ROOT)
    tags: set[str] = set()
    for cell in expand(raw_matrix(ROOT / path)):
        loaded = load_scenario(ROOT / path, root=ROOT, catalog=catalog, params=None, cell=cell)
        tags |= set(ensure_images(connect(), loaded.topology, catalog).values())
    return sorted(tags)


@pytest.fixture(scope="session")
def engine2() -> Iterator[SecondEngine]:
    with second_engine(f"labtest{os.getpid()}") as eng:
        copy_images(eng.url, matrix_images())
        yield eng


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HOST_ENGINE = "unix:///var/run/docker.sock"


@dataclass
class Cluster:
    scheduler: str
    reports: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    scheduler_proc: subprocess.Popen[str] | None = None

    def start_scheduler(self) -> None:
        port = int(self.scheduler.rsplit(":", 1)[1])
        self.scheduler_proc = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--dashboard-address", ":0", "--no-show"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.procs.append(self.scheduler_proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.scheduler_proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the Dask scheduler did not listen on {self.scheduler}")

    def start_worker(self, name: str, url: str, slots: int = 1, images: str = "build") -> None:
        log = open(self.reports / f"worker-{name}.log", "w")  # noqa: SIM115
        p = subprocess.Popen(
            [*LAB, "worker", "--engine", url, "--scheduler", self.scheduler,
             "--slots", str(slots), "--images", images],
            cwd=ROOT, env=lab_env(self.reports), stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.workers[name] = p
        self.procs.append(p)

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.scheduler, timeout="20s") as c:  # type: ignore[no-untyped-call]
            c.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


@pytest.fixture
def cluster(engine2: SecondEngine, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"tcp://127.0.0.1:{free_port()}", tmp_path)
    c.start_scheduler()
    try:
        yield c
    finally:
        c.stop()


def engine_leftovers(url: str) -> list[Any]:
    """Containers and networks carrying labharness labels on an engine."""
    import docker

    client = docker.DockerClient(base_url=url)
    try:
        flt = {"label": "labharness.run"}
        return [
            *client.containers.list(all=True, filters=flt, ignore_removed=True),
            *client.networks.list(filters=flt),
        ]
    finally:
        client.close()
