"""Shared fixtures. Tests that touch containers use the real engine; none mock it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB = [sys.executable, "-m", "harness"]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from harness.engine.client import connect

    return connect()  # raises InfraError (the test errors) when no engine answers: never skip


def lab_env(reports: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LABHARNESS_REPORTS"] = str(reports)
    env.update(extra)
    return env


def run_lab(
    *args: str, reports: Path, timeout: float = 600, check: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*LAB, *args],
        cwd=ROOT,
        env=lab_env(reports, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lab {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def run_json(*args: str, reports: Path, **env: str) -> Any:
    proc = run_lab(*args, "--json", reports=reports, check=True, **env)
    return json.loads(proc.stdout)


def labelled(client: Any, run: str) -> dict[str, list[str]]:
    """Names of every object carrying the run's label: what must be empty after teardown."""
    flt = {"label": f"labharness.run={run}"}
    return {
        "containers": [
            c.name for c in client.containers.list(all=True, filters=flt, ignore_removed=True)
        ],
        "networks": [n.name for n in client.networks.list(filters=flt)],
        "volumes": [v.name for v in client.volumes.list(filters=flt)],
    }


def nothing_left(client: Any, run: str) -> bool:
    return not any(labelled(client, run).values())


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    d = tmp_path / "reports"
    d.mkdir()
    return d


@pytest.fixture()
def cleanup_runs(docker_client: Any) -> Iterator[list[str]]:
    """Runs a test started; whatever the test's outcome, their objects go afterwards."""
    from harness.engine import objects

    runs: list[str] = []
    yield runs
    for r in runs:
        objects.remove(docker_client, objects.find(docker_client, r))


def indexed(reports: Path) -> dict[tuple[str, str], Any]:
    """The rows the verbs put in the default results store (<reports>/index.sqlite) as they
    finished, keyed (kind, id)."""
    from harness.store.db import Store

    store = Store.open(f"sqlite:///{reports / 'index.sqlite'}", readonly=True)
    try:
        return {(e.kind, e.id): e for e in store.entries()}
    finally:
        store.close()
