"""The results store on SQLite: each kind of result folder read into its row, `lab index`
rebuilding (idempotent, pruning what is gone), concurrent writers, read-only opening, and no
password shown. PostgreSQL: tests/engine/test_store_postgres.py."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfraError, UsageError
from harness.store.db import Store
from harness.store.entry import ResultEntry
from harness.store.location import shown, store_url
from harness.store.readers import escalation_rows, read_tree
from harness.store.record import index_folder, index_rows, rebuild


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path.parent


def _journal(
    run: str, *, role: str = "reproduce", verdict: str = "REPRODUCED", **more: Any
) -> dict[str, Any]:
    return {
        "run": run,
        "scenario": "quick-repro",
        "role": role,
        "case": {"ticket": "SUP-1"},
        "engine": "20.10",
        "started": "2026-12-04T10:00:00+00:00",
        "ended": "2026-12-04T10:00:04.5+00:00",
        "result": verdict,
        "reproduction": {"verdict": verdict, "observed": 2, "attempts": 3, "rate": "2/3"},
        "topology": {
            "nodes": [{"name": "web", "lab": "nginx", "version": "1.22", "os": "debian-12"}]
        },
        **more,
    }


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A reports root holding one of each kind, as the verbs write them."""
    r = tmp_path / "reports"
    _write(r / "quick-repro/run-a/journal.json", _journal("run-a"))
    _write(
        r / "quick-repro/run-b/journal.json",
        _journal("run-b", role="baseline", verification="verify-x"),
    )
    _write(
        r / "quick-repro/run-c/journal.json", _journal("run-c", role="cell", cell="os=debian-12")
    )
    _write(
        r / "quick-repro/verify-x/verification.json",
        {
            "id": "verify-x",
            "scenario": "quick-repro",
            "verdict": "FIXED",
            "reason": "r",
            "case": {"ticket": "SUP-1"},
            "overlay": {"fix": "add-page"},
            "baseline": {
                "run": "run-b",
                "rate": "2/2",
                "verdict": "REPRODUCED",
                "folder": "../run-b",
            },
            "candidate": {
                "run": "run-d",
                "rate": "0/2",
                "verdict": "NOT_REPRODUCED",
                "folder": "../run-d",
            },
        },
    )
    _write(
        r / "quick-repro/matrix-m/results.json",
        {
            "matrix": "matrix-m",
            "scenario": "quick-repro",
            "axes": {"os": ["debian-12"]},
            "started": "2026-12-04T11:00:00+00:00",
            "ended": "2026-12-04T11:01:00+00:00",
            "seconds": 60,
            "summary": {"PASS": 0, "FAIL": 1},
            "cells": [
                {
                    "label": "os=debian-12",
                    "cell": {"os": "debian-12"},
                    "status": "FAIL",
                    "verdict": "REPRODUCED",
                    "run": "run-c",
                    "folder": str(r / "quick-repro/run-c"),
                }
            ],
        },
    )
    _write(
        r / "gates/release/gate-g/results.json",
        {
            "gate": "release",
            "release": "1.4",
            "verdict": "FAIL",
            "ended": "2026-12-04T12:00:00+00:00",
            "cells": [
                {
                    "key": "k1",
                    "status": "FAIL",
                    "run": "run-c",
                    "folder": str(r / "quick-repro/run-c"),
                }
            ],
            "regressions": [{"cell": "k1", "baseline": "PASS", "now": "FAIL"}],
        },
    )
    _write(
        r / "quick-repro/bisect-b/bisect.json",
        {
            "id": "bisect-b",
            "scenario": "quick-repro",
            "verdict": "FOUND",
            "axis": "v",
            "first_bad": "1.4",
            "last_good": "1.3",
            "probes": [{"value": "1.4", "verdict": "REPRODUCED", "run": "p"}],
        },
    )
    _write(
        r / "replays/run-r/replay.json",
        {
            "id": "run-r",
            "scenario": "quick-repro",
            "verdict": "REPRODUCED",
            "bundle": "b.tar.gz",
            "original": {"run": "run-a", "verdict": "REPRODUCED"},
            "replay": {"run": "run-r", "rate": "1/1"},
        },
    )
    return r


LEDGER = [
    {
        "at": "2026-12-04T13:00:00+00:00",
        "ticket": "SUP-1",
        "run": "run-a",
        "scenario": "quick-repro",
        "verdict": "REPRODUCED",
        "rate": "2/3",
        "bundle": "run-a.tar.gz",
        "sha256": "ab" * 32,
        "trackers": [{"tracker": "local", "attached": ["run-a.tar.gz"], "url": "file:///t"}],
    },
]


def test_each_kind_is_read_into_its_row(tree: Path) -> None:
    found = read_tree(tree)
    rows = {(e.kind, e.id): e for e in found.entries}
    assert set(rows) == {
        ("run", "run-a"),
        ("run", "run-b"),
        ("run", "run-c"),
        ("verification", "verify-x"),
        ("matrix", "matrix-m"),
        ("gate", "gate-g"),
        ("bisect", "bisect-b"),
        ("replay", "run-r"),
    }
    a = rows[("run", "run-a")]
    assert (a.verdict, a.rate, a.observed, a.attempts, a.ticket) == (
        "REPRODUCED",
        "2/3",
        2,
        3,
        "SUP-1",
    )
    assert a.versions == {"web": "nginx 1.22 on debian-12"} and a.duration_s == 4.5
    assert a.folder == "quick-repro/run-a"  # relative to the reports root
    assert rows[("run", "run-b")].parent == "verify-x"
    assert rows[("run", "run-c")].parent == "matrix-m"  # the matrix names its cells' runs
    v = rows[("verification", "verify-x")]
    assert v.detail["candidate"]["folder"] == "quick-repro/run-d" and v.rate == "2/2 -> 0/2"
    m = rows[("matrix", "matrix-m")]
    assert m.verdict == "FAIL" and m.detail["cells"][0]["folder"] == "quick-repro/run-c"
    g = rows[("gate", "gate-g")]
    assert (g.scenario, g.release, g.detail["regressions"][0]["key"]) == ("release", "1.4", "k1")
    assert rows[("bisect", "bisect-b")].detail["first_bad"] == "1.4"
    assert rows[("replay", "run-r")].parent == "run-a"
    esc = escalation_rows(LEDGER, tree)
    assert esc[0].ticket == "SUP-1" and esc[0].detail["trackers"][0]["attached"] == ["run-a.tar.gz"]


def test_a_live_rerun_is_its_own_row_under_its_lab(tree: Path) -> None:
    live = {"on": "run-a", "rerun": "1", "folder": str(tree / "quick-repro/run-a")}
    _write(
        tree / "quick-repro/run-a/live/1/journal.json",
        _journal("run-a", verdict="NOT_REPRODUCED", live=live),
    )
    rows = {(e.kind, e.id): e for e in read_tree(tree).entries}
    rerun = rows[("run", "run-a/live/1")]
    assert (rerun.parent, rerun.verdict, rerun.folder) == (
        "run-a",
        "NOT_REPRODUCED",
        "quick-repro/run-a/live/1",
    )
    assert rows[("run", "run-a")].verdict == "REPRODUCED"  # the lab's own run is untouched
    assert index_folder(tree, tree / "quick-repro/run-a/live/1")
    assert index_folder(tree, tree / "quick-repro/run-a")
    ids = {e.id for e in Store.open(store_url(tree), readonly=True).entries("run")}
    assert ids == {"run-a", "run-a/live/1"}


def test_an_unreadable_folder_is_named_and_the_rest_indexed(tree: Path) -> None:
    (tree / "quick-repro/broken").mkdir()
    (tree / "quick-repro/broken/verification.json").write_text("{not json")
    (tree / "elsewhere").mkdir()
    (tree / "quick-repro/link").symlink_to(tree / "elsewhere")  # never followed
    found = read_tree(tree)
    assert len(found.entries) == 8
    assert len(found.skipped) == 1 and "quick-repro/broken" in found.skipped[0]


def test_rebuild_is_idempotent_and_prunes_what_is_gone(tree: Path) -> None:
    url = store_url(tree)
    first = rebuild(tree, LEDGER)
    assert (first.indexed, first.removed) == (9, 0) and first.by_kind["run"] == 3
    store = Store.open(url, readonly=True)
    before = sorted((e.kind, e.id, e.verdict) for e in store.entries())
    again = rebuild(tree, LEDGER)
    assert (again.indexed, again.removed) == (9, 0)
    assert sorted((e.kind, e.id, e.verdict) for e in store.entries()) == before
    for f in (tree / "quick-repro/run-a").iterdir():
        f.unlink()
    (tree / "quick-repro/run-a").rmdir()
    assert rebuild(tree, LEDGER).removed == 1
    assert ("run", "run-a") not in {(e.kind, e.id) for e in store.entries()}
    store.close()


def test_a_finished_result_is_indexed_and_updated_in_place(tree: Path) -> None:
    assert index_folder(tree, tree / "quick-repro/run-a")
    _write(tree / "quick-repro/run-a/journal.json", _journal("run-a", verdict="NOT_REPRODUCED"))
    assert index_folder(tree, tree / "quick-repro/run-a")
    rows = Store.open(store_url(tree), readonly=True).entries("run")
    assert [(r.id, r.verdict) for r in rows] == [("run-a", "NOT_REPRODUCED")]


def _writer(url: str, n: int) -> None:
    store = Store.open(url)
    for i in range(40):
        store.upsert([ResultEntry(kind="run", id=f"w{n}-{i}", scenario="s", verdict="REPRODUCED")])
    store.close()


def write_at_once(url: str) -> None:
    """Eight processes open the store at once (a new one: the migration under its lock) and
    each write 40 rows; all of them exit 0."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, n)) for n in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8


def test_concurrent_writers_all_land(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    write_at_once(url)
    assert len(Store.open(url, readonly=True).entries()) == 320


def test_read_only_store_never_writes_and_a_missing_one_says_how_to_make_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    with pytest.raises(UsageError, match="does not exist") as exc:
        Store.open(url, readonly=True)
    assert "lab index" in (exc.value.hint or "")
    Store.open(url).close()
    ro = Store.open(url, readonly=True)
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError):
        ro.upsert([ResultEntry(kind="run", id="x")])


def test_no_password_is_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql://lab:s3cret-pw@127.0.0.1:1/results"
    assert "s3cret-pw" not in shown(store_url(tmp_path, url))
    with pytest.raises(InfraError) as exc:
        Store.open(store_url(tmp_path, url))
    assert "s3cret-pw" not in exc.value.message and "***" in exc.value.message
    caplog.set_level(logging.WARNING)
    assert not index_rows(tmp_path, [ResultEntry(kind="run", id="x")], given=url)
    assert "not indexed" in caplog.text and "s3cret-pw" not in caplog.text


def test_a_bad_url_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a store URL"):
        Store.open("bogus://x")
    assert store_url(tmp_path, "some/file.sqlite").startswith("sqlite:///")
    assert store_url(tmp_path, "postgresql://h/db") == "postgresql+psycopg://h/db"
