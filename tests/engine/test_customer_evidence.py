"""The customer's evidence beside the lab's, on the real engine: the TLS case lists the
customer's DMZ capture and a terminal's log; the run reads them first (the `evidence` phase),
compares their signatures with its own findings, and says so on the verdict line, in --json,
the journal and report.html; with the fix the lab shows none of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_lab

pytestmark = [pytest.mark.engine]

CASE = "scenarios/cases/tls-protocol-mismatch.yaml"
THEIRS = ["log:curl.tls-handshake", "tls.alert:protocol_version", "tls.handshake-failed"]


def test_the_lab_shows_the_customers_signatures(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab("reproduce", CASE, "--destroy", "always", reports=reports)
    assert p.returncode == 0, p.stderr
    assert "; the lab showed 3 of the customer's 3 signatures" in p.stdout + p.stderr
    p = run_lab("reproduce", CASE, "--destroy", "always", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    assert r["evidence"] == {"signatures": THEIRS, "shown": THEIRS, "missing": []}
    journal = json.loads((Path(r["folder"]) / "journal.json").read_text())
    assert journal["phases"][0]["phase"] == "evidence"
    files = [s["path"] for s in journal["phases"][0]["sources"]]
    assert files == [
        "fixtures/tls-protocol-mismatch/customer-dmz.pcap",
        "fixtures/tls-protocol-mismatch/terminal-client.log",
    ]
    assert journal["evidence_match"]["shown"] == THEIRS
    page = (Path(r["folder"]) / "report.html").read_text()
    assert (
        "The customer's evidence</h2>" in page
        and page.count('<span class="st passed">shown</span>') == 3
    )


def test_with_the_fix_the_lab_shows_none_of_them(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab(
        "verify-fix",
        CASE,
        "--fix",
        "enable-tls13",
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    cleanup_runs += [r["baseline"]["run"], r["candidate"]["run"]]
    assert r["verdict"] == "FIXED", r["reason"]
    assert r["baseline"]["evidence"]["missing"] == []
    assert r["candidate"]["evidence"] == {"signatures": THEIRS, "shown": [], "missing": THEIRS}
