"""The terminal's last lines say why (harness/verbs/why.py, issue 15 point 5): the probe or
check that decided, what it expected and what it got."""

from __future__ import annotations

from typing import Any

from harness.run.result import AttemptResult, RunResult
from harness.verbs import why

PROBE = "step polls: exit_code=1, stderr=FAILED exit"


def _attempt(i: int, held: bool, evidence: list[str], error: str | None = None) -> AttemptResult:
    leaf = {"probe": PROBE, "held": held, "evidence": evidence}
    sym = {"probe": "symptom", "held": held, "evidence": [], "children": [leaf]}
    return AttemptResult(attempt=i, observed=held and not error, error=error, symptom=sym)


def _run(
    verdict: str, attempts: list[AttemptResult], role: str = "reproduce", **kw: Any
) -> RunResult:
    k = sum(a.observed for a in attempts)
    return RunResult(
        run="r1",
        scenario="s",
        role=role,
        fix=None,
        folder="/tmp/r1",
        engine="20.10",
        verdict=verdict,
        observed=k,
        attempts=len(attempts),
        planned=len(attempts),
        rate=f"{k}/{len(attempts)}",
        reason="",
        attempt_results=attempts,
        checks=kw.get("checks", []),
        checks_green=True,
        kept=False,
        seconds=1.0,
    )


def test_not_reproduced_names_the_probe_and_what_it_got() -> None:
    r = _run(
        "NOT_REPRODUCED",
        [
            _attempt(1, False, ["exit code 0 (expected 1)"]),
            _attempt(
                2,
                False,
                ["exit code 0 (expected 1)", "stderr does not match /FAILED exit/ (got '')"],
            ),
        ],
    )
    assert why.run_lines(r) == [
        f"attempt 2: probe {PROBE}: exit code 0 (expected 1); "
        "stderr does not match /FAILED exit/ (got '')"
    ]


def test_a_reproduced_run_needs_no_why() -> None:
    assert (
        why.run_lines(_run("REPRODUCED", [_attempt(1, True, ["exit code 1 (expected 1)"])])) == []
    )


def test_not_fixed_shows_where_the_candidate_still_saw_it() -> None:
    base = _run("REPRODUCED", [_attempt(1, True, ["exit code 1 (expected 1)"])], role="baseline")
    cand = _run(
        "REPRODUCED",
        [
            _attempt(1, False, ["exit code 0 (expected 1)"]),
            _attempt(2, True, ["exit code 1 (expected 1)"]),
        ],
        role="candidate",
    )
    assert why.fix_lines("NOT_FIXED", base, cand) == [
        f"attempt 2: probe {PROBE}: exit code 1 (expected 1)"
    ]


def test_regression_names_the_check_expected_and_got() -> None:
    ok = {
        "name": "client$ curl -fsS http://proxy/health",
        "passed": True,
        "exit_code": 0,
        "expected": 0,
    }
    bad = {
        **ok,
        "passed": False,
        "exit_code": 22,
        "output": "curl: (22) The requested URL returned error: 502\n",
    }
    other = {"name": "proxy$ nginx -t", "passed": False, "exit_code": 1, "expected": 0}
    base = _run("REPRODUCED", [], role="baseline", checks=[ok, other])
    cand = _run("NOT_REPRODUCED", [], role="candidate", checks=[bad, other])
    assert why.fix_lines("REGRESSION", base, cand) == [
        "check client$ curl -fsS http://proxy/health: exit 22 (expected 0); "
        "output: curl: (22) The requested URL returned error: 502"
    ]  # nginx -t failed on both sides: no regression, not listed


def test_attempts_that_could_not_run_are_not_the_why() -> None:
    r = _run(
        "NOT_REPRODUCED",
        [_attempt(1, False, ["exit code 0 (expected 1)"]), _attempt(2, False, [], error="lost")],
    )
    assert why.run_lines(r) == [f"attempt 1: probe {PROBE}: exit code 0 (expected 1)"]
