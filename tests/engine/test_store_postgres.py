"""A team's results store on a real PostgreSQL: the shipped postgres lab brought up with
`lab up`, reached at its bridge address. `lab index` into it (schema by Alembic, idempotent),
concurrent writers from several processes, and a database that goes away: a clear error, exit 3,
no password anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.store.db import Store
from tests.conftest import run_json, run_lab
from tests.unit.test_store import LEDGER, write_at_once
from tests.unit.test_store import tree as tree

SCENARIO = "tests/engine/scenarios/results-store-postgres.yaml"
PASSWORD = "store-pw-Zr81q"


@pytest.fixture()
def postgres(reports: Path, cleanup_runs: list[str]) -> Iterator[tuple[str, str]]:
    """(store URL, run id) of a PostgreSQL that is up and accepting logins."""
    up = run_json("up", SCENARIO, reports=reports)
    cleanup_runs.append(up["run"])
    address = up["nodes"][0]["addresses"]["store"]
    yield f"postgresql://lab:{PASSWORD}@{address}/results", up["run"]


def test_index_into_postgresql_is_idempotent(
    postgres: tuple[str, str],
    tree: Path,
    reports: Path,
) -> None:
    # the same tmp reports root: the tree's nine results and the database's own `lab up` run
    url, _ = postgres
    escalations = reports.parent / "escalations"
    escalations.mkdir()
    (escalations / "ledger.json").write_text(json.dumps({"escalations": LEDGER}))
    env = {"LABHARNESS_REPORTS": str(tree), "LABHARNESS_ESCALATIONS": str(escalations)}
    first = run_lab("index", "--store", url, "--json", reports=tree, **env)
    assert first.returncode == 0, first.stderr
    r = json.loads(first.stdout)
    assert (r["indexed"], r["removed"]) == (10, 0) and r["store"].startswith(
        "postgresql+psycopg://lab:***@"
    )
    again = json.loads(
        run_lab("index", "--store", url, "--json", reports=tree, check=True, **env).stdout
    )
    assert (again["indexed"], again["removed"]) == (10, 0)
    store = Store.open(url, readonly=True)
    rows = {(e.kind, e.id): e for e in store.entries()}
    store.close()
    assert len(rows) == 10 and rows[("run", postgres[1])].role == "up"
    assert rows[("run", "run-c")].parent == "matrix-m"
    assert rows[("gate", "gate-g")].detail["regressions"][0]["key"] == "k1"
    assert PASSWORD not in first.stdout + first.stderr


def test_concurrent_writers_on_postgresql(postgres: tuple[str, str]) -> None:
    """Eight processes open the fresh database at once (the migration under an advisory lock)
    and each write 40 rows: all 320 land."""
    url, _ = postgres
    full = url.replace("postgresql://", "postgresql+psycopg://")
    write_at_once(full)
    store = Store.open(full, readonly=True)
    assert len(store.entries("run")) == 320
    store.close()


def test_a_lost_database_is_a_clear_error(postgres: tuple[str, str], reports: Path) -> None:
    url, run = postgres
    run_lab("down", run, reports=reports, check=True)
    p = run_lab("index", "--store", url, reports=reports, timeout=120)
    assert p.returncode == 3, p.stderr
    assert "results store postgresql+psycopg://lab:***@" in p.stderr
    assert "Traceback" not in p.stderr and PASSWORD not in p.stderr + p.stdout
