"""`finding:` symptom probes on the real engine: a symptom written in the customer's terms (an
nginx log signature and the HTTP 413 on the capture) is REPRODUCED with the findings as its
evidence; the fix that raises the limit is FIXED and a wrong one NOT_FIXED, the why naming
the finding; REPRODUCE.sh greps the node's log for the signature's own regex."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_lab

pytestmark = [pytest.mark.engine]

SCENARIO = "tests/engine/scenarios/finding-probes.yaml"


def test_the_findings_are_the_symptom(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab("reproduce", SCENARIO, "--destroy", "always", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    assert (p.returncode, r["verdict"], r["rate"]) == (0, "REPRODUCED", "2/2"), p.stderr
    journal = json.loads((Path(r["folder"]) / "journal.json").read_text())
    attempt = next(ph for ph in journal["phases"] if ph["phase"] == "attempt-1")
    log, capture = attempt["symptom"]["children"]
    assert log["held"] and log["evidence"][0].startswith("log:nginx.body-too-large x1 (web ")
    assert capture["held"] and capture["evidence"][0].startswith(
        "http.status:413 x1 (captures/lan.pcap frame "
    )
    script = (Path(r["folder"]) / "REPRODUCE.sh").read_text()
    assert (
        "log_matches web /var/log/nginx/error.log '(client intended to send too large body)'"
        in script
    )


@pytest.mark.parametrize(
    ("fix", "verdict"), [("raise-body-size", "FIXED"), ("wrong-location", "NOT_FIXED")]
)
def test_a_fix_is_judged_by_the_findings(
    docker_client: Any, reports: Path, cleanup_runs: list[str], fix: str, verdict: str
) -> None:
    p = run_lab(
        "verify-fix", SCENARIO, "--fix", fix, "--destroy", "always", "--json", reports=reports
    )
    r = json.loads(p.stdout)
    cleanup_runs += [r["baseline"]["run"], r["candidate"]["run"]]
    assert r["verdict"] == verdict, r["reason"]
    if verdict == "NOT_FIXED":
        assert any("finding http.status:413 on lan capture" in w for w in r["why"]), r["why"]
