"""A verify-fix that asks for a confidence, on the real lossy-link case (nginx and curl from
Debian behind a 20%-loss link, issue 15 point 3): the candidate runs as many clean attempts as
the baseline's observed rate needs at 95%, within the budget, and FIXED is said only when it
got them; otherwise INCONCLUSIVE names the count it needed. Every k/n carries its interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.confidence import attempts_needed, wilson
from tests.conftest import ROOT, nothing_left, run_lab

CASE = ROOT / "scenarios/cases/lossy-link-intermittent.yaml"
BUDGET = 6


def _confident_copy(tmp_path: Path) -> Path:
    """The case as written, with `attempts: 3, confidence: 0.95, max_attempts: 6`."""
    text = CASE.read_text()
    assert "\n  attempts: 6\n" in text
    text = text.replace(
        "\n  attempts: 6\n",
        f"\n  attempts: 3\n  confidence: 0.95\n  max_attempts: {BUDGET}\n",
    )
    path = tmp_path / "lossy-confident.yaml"
    path.write_text(text)
    return path


def test_the_candidate_runs_what_the_baseline_rate_needs(
    tmp_path: Path, docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab(
        "verify-fix",
        str(_confident_copy(tmp_path)),
        "--project",
        str(ROOT),
        "--fix",
        "client-retries",
        "-p",
        "loss=20%",  # the baseline shows the symptom in its 3 attempts all but ~1 in 50,000
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    assert p.stdout.strip(), p.stderr
    r = json.loads(p.stdout)
    base, cand = r["baseline"], r["candidate"]
    cleanup_runs += [base["run"], cand["run"]]
    assert base["verdict"] == "REPRODUCED", base["reason"]
    k, n = base["observed"], base["attempts"]
    assert n == 3  # at least `attempts`, and it saw the symptom: no more
    needed = attempts_needed(k, n, 0.95)
    assert needed is not None
    # the retries make the symptom go: the candidate runs clean up to its plan
    assert cand["observed"] == 0, cand["reason"]
    assert cand["attempts"] == cand["planned"] == min(BUDGET, max(3, needed))
    if cand["attempts"] >= needed:
        assert (r["verdict"], p.returncode) == ("FIXED", 0), r["reason"]
    else:
        assert (r["verdict"], p.returncode) == ("INCONCLUSIVE", 1), r["reason"]
        assert f"needs {needed} to claim FIXED at 95% for a baseline rate of {k}/{n}" in r["reason"]
    for side in (base, cand):
        iv = wilson(side["observed"], side["attempts"])
        assert side["interval"]["text"] == iv.text()
        assert nothing_left(docker_client, side["run"])
