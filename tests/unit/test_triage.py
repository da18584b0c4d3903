"""`lab triage` through the CLI, no engine: evidence (a customer's log file, a folder) read by
`lab analyze`, ranked against the shipped known-problems/ and the escalations the local ledger
holds; why each one matched; bad evidence exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PG_LINE = "2026-12-01 10:00:01.123 UTC [412] FATAL:  sorry, too many clients already\n"


def lab(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABHARNESS_ESCALATIONS": str(tmp / "esc")}
    return subprocess.run(
        [sys.executable, "-m", "harness", "triage", *args, "--project", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp,
    )


def test_a_customer_log_is_triaged_to_its_known_problem(tmp_path: Path) -> None:
    log = tmp_path / "postgresql-15-main.log"
    log.write_text(
        "2026-12-01 10:00:00.000 UTC [400] LOG:  database system is ready\n" + PG_LINE * 3
    )
    p = lab(tmp_path, str(log), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    first = r["matches"][0]
    assert first["id"] == "postgres-too-many-clients" and first["score"] == 1.0
    assert first["cases"] == ["scenarios/cases/postgres-too-many-clients.yaml"]
    assert first["why"] == [f"seen log:postgres.too-many-clients x3 ({log}:2)"]
    assert r["signatures"] == {"log:postgres.too-many-clients": 3} and r["known"] >= 7
    text = lab(tmp_path, str(log)).stdout
    assert text.startswith("1. postgres-too-many-clients  100%")
    assert "reproduce: lab reproduce scenarios/cases/postgres-too-many-clients.yaml" in text


def test_an_escalation_with_recorded_signatures_is_a_known_problem(tmp_path: Path) -> None:
    (tmp_path / "esc").mkdir()
    entry = {
        "ticket": "SUP-5",
        "run": "261201-101010-beef",
        "scenario": "pool",
        "title": "Order sync fails when its pool warms up",
        "signatures": ["log:postgres.too-many-clients"],
        "fix": "smaller-pool (workaround, verified FIXED in verify-261201-101010-cafe)",
        "trackers": [{"tracker": "local", "url": "file:///x/SUP-5"}],
    }
    ledger = {
        "ledger_version": 1,
        "escalations": [entry, {**entry, "ticket": "SUP-6", "signatures": []}],
    }
    (tmp_path / "esc" / "ledger.json").write_text(json.dumps(ledger))
    log = tmp_path / "db.log"
    log.write_text(PG_LINE)
    r = json.loads(lab(tmp_path, str(log), "--json").stdout)
    by_id = {m["id"]: m for m in r["matches"]}
    assert set(by_id) == {"postgres-too-many-clients", "SUP-5"}  # SUP-6 recorded none
    assert by_id["SUP-5"]["fix"] == entry["fix"] and by_id["SUP-5"]["link"] == "file:///x/SUP-5"
    assert by_id["SUP-5"]["source"] == "escalation SUP-5 (261201-101010-beef)"


def test_nothing_known_and_bad_evidence(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text("all good\n")
    p = lab(tmp_path, str(quiet))
    assert p.returncode == 0 and p.stdout.startswith("no known problem matches"), p.stderr
    bad = tmp_path / "capture.pcap"
    bad.write_bytes(os.urandom(256))
    p = lab(tmp_path, str(bad), str(tmp_path / "missing.log"))
    assert p.returncode == 2, p.stderr
    assert "missing.log: no such file or folder" in p.stderr and "Traceback" not in p.stderr
