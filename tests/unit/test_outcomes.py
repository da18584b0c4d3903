"""Every outcome rule in harness/outcomes.py, one table each: every verdict reachable, the
precedence between them, what each role hopes for, cell status, gate, bisect, and the exit code
of every verb for every result it can end with."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from harness import outcomes as o


def att(observed: bool = False, error: str | None = None) -> dict[str, Any]:
    return {"observed": observed, "error": error}


# -- reproduce ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "planned", "verdict", "rate"),
    [
        ([att(True), att(True)], 2, o.REPRODUCED, "2/2"),
        ([att(False), att(True), att(False)], 3, o.REPRODUCED, "1/3"),  # k of n: intermittent
        ([att(False), att(False)], 2, o.NOT_REPRODUCED, "0/2"),
        ([att(False), att(error="node db is exited")], 2, o.ERROR, "0/1"),  # never NOT_REPR.
        ([att(True), att(error="engine lost")], 2, o.ERROR, "1/1"),  # an error wins over k >= 1
        ([att(True)], 3, o.ERROR, "1/1"),  # fewer attempts than planned: never REPRODUCED 1/1
        ([att(False)], 3, o.ERROR, "0/1"),  # ... nor NOT_REPRODUCED
        ([], 1, o.ERROR, "0/0"),
    ],
)
def test_reproduction(
    attempts: list[dict[str, Any]], planned: int, verdict: str, rate: str
) -> None:
    r = o.reproduction(attempts, planned)
    assert (r.verdict, r.rate, r.planned) == (verdict, rate, planned)
    assert r.reason


def test_error_is_never_not_reproduced() -> None:
    r = o.reproduction([att(error="engine lost")], 1)
    assert r.verdict == o.ERROR and "engine lost" in r.reason
    assert o.exit_code("reproduce", r.verdict) == 3


def test_a_failed_run_is_error_whatever_its_attempts_saw() -> None:
    r = o.run_failed([att(True), att(False)], 3, "build failed")
    assert (r.verdict, r.observed, r.attempts, r.planned, r.reason) == (
        o.ERROR,
        1,
        2,
        3,
        "build failed",
    )


def test_reproduction_round_trips_through_a_result() -> None:
    r = o.reproduction([att(True), att(False)], 2)
    d = r.as_dict()
    assert d == {
        "verdict": o.REPRODUCED,
        "observed": 1,
        "attempts": 2,
        "planned": 2,
        "rate": "1/2",
        "reason": "symptom observed in 1 of 2",
        "interval": {"low": 0.0945, "high": 0.9055, "confidence": 0.95, "text": "95% CI 9-91%"},
    }
    assert o.Reproduction.of({**d, "run": "x"}) == r
    assert r.rate_text() == "1/2, 95% CI 9-91%"


def test_rate_text_without_attempts_is_just_the_rate() -> None:
    assert o.rate_text(0, 0) == "0/0"
    assert o.rate_text(None, 3) == ""
    assert o.rate_text(3, 10, 0.9) == "3/10, 90% CI 13-56%"


@pytest.mark.parametrize(
    ("recorded", "ended", "shown"),
    [
        (o.REPRODUCED, True, o.REPRODUCED),
        (o.ERROR, False, o.ERROR),
        ("", False, o.INCOMPLETE),
        ("", True, o.UNKNOWN),
    ],
)
def test_recorded_verdict(recorded: str, ended: bool, shown: str) -> None:
    assert o.recorded_verdict(recorded, ended) == shown


@pytest.mark.parametrize(
    ("error", "observed", "state"),
    [
        ("boom", True, "ERROR"),
        ("boom", False, "ERROR"),
        (None, True, "observed"),
        (None, False, "absent"),
    ],
)
def test_attempt_state(error: str | None, observed: bool, state: str) -> None:
    assert o.attempt_state(error, observed) == state


@pytest.mark.parametrize(
    ("checks", "green"),
    [
        ([], True),
        ([{"name": "a", "passed": True}], True),
        ([{"name": "a", "passed": True}, {"name": "b", "passed": False}], False),
        ([{"name": "a"}], False),  # no `passed`: not green
        ([{"name": "a", "passed": None}], False),
    ],
)
def test_checks_green(checks: list[dict[str, Any]], green: bool) -> None:
    assert o.checks_green(checks) is green


# -- verify-fix ---------------------------------------------------------------------------------


def rep(verdict: str, k: int = 0, n: int = 3, reason: str = "") -> o.Reproduction:
    return o.Reproduction(verdict, k, n, n, reason)


OK = [{"name": "c1", "passed": True}]
BAD = [{"name": "c1", "passed": False}]
OTHER_BAD = [{"name": "c2", "passed": False}]


@pytest.mark.parametrize(
    ("base", "cand", "bchecks", "cchecks", "expected", "in_reason"),
    [
        (rep(o.REPRODUCED, 3), rep(o.NOT_REPRODUCED), OK, OK, o.FIXED, "checks green"),
        (rep(o.REPRODUCED, 3), rep(o.NOT_REPRODUCED), [], [], o.FIXED, "candidate 0/3"),
        (rep(o.REPRODUCED, 3), rep(o.REPRODUCED, 1), OK, OK, o.NOT_FIXED, "(1/3)"),
        (rep(o.REPRODUCED, 3), rep(o.NOT_REPRODUCED), OK, BAD, o.REGRESSION, "c1"),
        # REGRESSION wins over NOT_FIXED
        (rep(o.REPRODUCED, 3), rep(o.REPRODUCED, 2), OK, BAD, o.REGRESSION, "c1"),
        # a check failing on both sides is no regression: NOT_FIXED then
        (rep(o.REPRODUCED, 3), rep(o.REPRODUCED, 2), BAD, BAD, o.NOT_FIXED, "still observed"),
        # a check the baseline did not run is no regression either
        (rep(o.REPRODUCED, 3), rep(o.REPRODUCED, 2), OK, OTHER_BAD, o.NOT_FIXED, "still"),
        # INCONCLUSIVE, kind 1: the baseline did not reproduce, nothing to fix
        (rep(o.NOT_REPRODUCED), rep(o.NOT_REPRODUCED), OK, OK, o.INCONCLUSIVE, "baseline did"),
        (rep(o.NOT_REPRODUCED), rep(o.REPRODUCED, 1), OK, BAD, o.INCONCLUSIVE, "nothing to fix"),
        # INCONCLUSIVE, kind 2: symptom gone but the checks fail on the baseline too
        (rep(o.REPRODUCED, 3), rep(o.NOT_REPRODUCED), BAD, BAD, o.INCONCLUSIVE, "failing on"),
        # ERROR, each side, whatever the other says
        (rep(o.ERROR, reason="b lost"), rep(o.NOT_REPRODUCED), OK, OK, o.ERROR, "baseline: b"),
        (rep(o.REPRODUCED, 3), rep(o.ERROR, reason="c lost"), OK, BAD, o.ERROR, "candidate: c"),
        (rep(o.ERROR, reason="b"), rep(o.ERROR, reason="c"), OK, OK, o.ERROR, "baseline: b"),
    ],
)
def test_fix_verdict(
    base: o.Reproduction,
    cand: o.Reproduction,
    bchecks: list[dict[str, Any]],
    cchecks: list[dict[str, Any]],
    expected: str,
    in_reason: str,
) -> None:
    verdict, reason = o.fix_verdict(base, cand, bchecks, cchecks)
    assert verdict == expected, reason
    assert in_reason in reason


@pytest.mark.parametrize(
    ("base", "cand", "level", "expected", "in_reason"),
    [
        # the case: 3 clean attempts against a baseline of 3/10 prove little at 95%
        (
            o.Reproduction(o.REPRODUCED, 3, 10, 10, ""),
            o.Reproduction(o.NOT_REPRODUCED, 0, 3, 3, ""),
            0.95,
            o.INCONCLUSIVE,
            "candidate absent in 3 of 3, needs 9 to claim FIXED at 95% for a baseline rate of 3/10",
        ),
        (
            o.Reproduction(o.REPRODUCED, 3, 10, 10, ""),
            o.Reproduction(o.NOT_REPRODUCED, 0, 9, 9, ""),
            0.95,
            o.FIXED,
            "checks green",
        ),
        # no confidence asked: today's rule, FIXED on one clean attempt
        (
            o.Reproduction(o.REPRODUCED, 1, 1, 1, ""),
            o.Reproduction(o.NOT_REPRODUCED, 0, 1, 1, ""),
            None,
            o.FIXED,
            "candidate 0/1",
        ),
        # a baseline seen every time: one clean attempt is enough at 95%
        (
            o.Reproduction(o.REPRODUCED, 2, 2, 2, ""),
            o.Reproduction(o.NOT_REPRODUCED, 0, 1, 1, ""),
            0.95,
            o.FIXED,
            "",
        ),
        # the confidence never turns NOT_FIXED into anything else
        (
            o.Reproduction(o.REPRODUCED, 3, 10, 10, ""),
            o.Reproduction(o.REPRODUCED, 1, 3, 3, ""),
            0.95,
            o.NOT_FIXED,
            "still observed",
        ),
    ],
)
def test_fix_verdict_with_a_confidence(
    base: o.Reproduction, cand: o.Reproduction, level: float | None, expected: str, in_reason: str
) -> None:
    verdict, reason = o.fix_verdict(base, cand, OK, OK, confidence=level)
    assert verdict == expected, reason
    assert in_reason in reason


# -- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "hoped"),
    [
        ("reproduce", o.REPRODUCED),
        ("baseline", o.REPRODUCED),
        ("cell", o.REPRODUCED),
        ("probe", o.REPRODUCED),
        ("candidate", o.NOT_REPRODUCED),
    ],
)
def test_role_hopes(role: str, hoped: str) -> None:
    assert o.hoped_verdict(role) == hoped
    assert o.hopes_absent(role) is (hoped == o.NOT_REPRODUCED)
    other = o.NOT_REPRODUCED if hoped == o.REPRODUCED else o.REPRODUCED
    assert o.role_result(role, hoped) == "hoped"
    assert o.role_result(role, other) == "not hoped"
    for v in (o.ERROR, o.INCOMPLETE, o.UNKNOWN):
        assert o.role_result(role, v) == "error"
    assert o.attempt_as_hoped(role, hoped == o.REPRODUCED)
    assert not o.attempt_as_hoped(role, hoped != o.REPRODUCED)


def test_every_role_is_in_the_table() -> None:
    assert set(o.ROLES) == {"reproduce", "baseline", "candidate", "cell", "probe"}


@pytest.mark.parametrize(
    ("role", "verdict", "checks_ok", "passed"),
    [
        ("reproduce", o.REPRODUCED, True, True),
        ("reproduce", o.REPRODUCED, False, False),
        ("reproduce", o.NOT_REPRODUCED, True, False),
        ("reproduce", o.ERROR, True, False),
        ("baseline", o.REPRODUCED, True, True),
        ("cell", o.REPRODUCED, True, True),
        ("candidate", o.NOT_REPRODUCED, True, True),
        ("candidate", o.NOT_REPRODUCED, False, False),
        ("candidate", o.REPRODUCED, True, False),
        ("candidate", o.ERROR, True, False),
    ],
)
def test_run_passed(role: str, verdict: str, checks_ok: bool, passed: bool) -> None:
    assert o.run_passed(role, verdict, checks_ok) is passed


# -- matrix -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "checks_ok", "expect", "status"),
    [
        (o.NOT_REPRODUCED, True, o.NOT_REPRODUCED, o.PASS),
        (o.REPRODUCED, True, o.NOT_REPRODUCED, o.FAIL),
        (o.REPRODUCED, True, o.REPRODUCED, o.PASS),
        (o.NOT_REPRODUCED, True, o.REPRODUCED, o.FAIL),
        (o.NOT_REPRODUCED, False, o.NOT_REPRODUCED, o.FAIL),
        (o.REPRODUCED, False, None, o.FAIL),
        (o.ERROR, True, o.NOT_REPRODUCED, o.ERROR),  # never FAIL
        (o.ERROR, False, o.REPRODUCED, o.ERROR),  # not even with failing checks
        (o.NOT_REPRODUCED, True, None, o.PASS),
        (o.REPRODUCED, True, None, o.PASS),
    ],
)
def test_cell_status(verdict: str, checks_ok: bool, expect: str | None, status: str) -> None:
    assert o.cell_status(verdict, checks_ok, expect) == status


def test_cell_summary_counts_every_status() -> None:
    assert o.cell_summary([]) == {"PASS": 0, "FAIL": 0, "ERROR": 0, "SKIP": 0}
    assert o.cell_summary(["PASS", "SKIP", "PASS", "ERROR"]) == {
        "PASS": 2,
        "FAIL": 0,
        "ERROR": 1,
        "SKIP": 1,
    }


@pytest.mark.parametrize(
    ("summary", "lost", "result", "code"),
    [
        ({"PASS": 2, "FAIL": 0, "ERROR": 0, "SKIP": 1}, False, o.PASS, 0),
        ({"PASS": 0, "FAIL": 0, "ERROR": 0, "SKIP": 3}, False, o.PASS, 0),
        ({"PASS": 2, "FAIL": 1, "ERROR": 0, "SKIP": 0}, False, o.FAIL, 1),
        ({"PASS": 2, "FAIL": 0, "ERROR": 1, "SKIP": 0}, False, o.FAIL, 1),  # ERROR cells: 1
        ({"PASS": 2, "FAIL": 0, "ERROR": 0, "SKIP": 0}, True, o.LOST, 3),  # cluster lost: 3
        ({"PASS": 0, "FAIL": 1, "ERROR": 1, "SKIP": 0}, True, o.LOST, 3),
    ],
)
def test_matrix_result(summary: dict[str, int], lost: bool, result: str, code: int) -> None:
    assert o.matrix_result(summary, lost) == result
    assert o.exit_code("matrix", result) == code


# -- gate ---------------------------------------------------------------------------------------


def test_compare_with_baseline() -> None:
    base = {"a": "PASS", "b": "FAIL", "c": "PASS", "gone": "PASS", "e": "PASS"}
    now = {"a": "FAIL", "b": "PASS", "c": "PASS", "new": "PASS", "e": "ERROR"}
    d = o.compare(now, base)
    assert [r["cell"] for r in d["regressions"]] == ["a"]
    assert d["regressions"][0] == {"cell": "a", "baseline": "PASS", "now": "FAIL"}
    assert [r["cell"] for r in d["fixed"]] == ["b"]
    assert d["new"] == [{"cell": "new", "now": "PASS"}]
    assert d["removed"] == [{"cell": "gone", "baseline": "PASS"}]
    # PASS then ERROR now is no regression (the gate fails on the ERROR itself)
    assert "e" not in {r["cell"] for k in d for r in d[k]}
    assert o.compare(now, None) == {"regressions": [], "fixed": [], "new": [], "removed": []}
    assert list(d) == list(o.COMPARISONS)


NONE: dict[str, list[dict[str, str]]] = {k: [] for k in o.COMPARISONS}
REGRESSED = {**NONE, "regressions": [{"cell": "s[a]", "baseline": "PASS", "now": "FAIL"}]}


@pytest.mark.parametrize(
    ("diff", "errors", "found", "on_missing", "verdict", "reason"),
    [
        (NONE, [], True, "fail", o.PASS, "no regression against b.json"),
        (REGRESSED, [], True, "fail", o.FAIL, "regressed: s[a]"),
        (NONE, ["s[x]"], True, "fail", o.FAIL, "ERROR: s[x]"),
        (REGRESSED, ["s[x]"], True, "fail", o.FAIL, "regressed: s[a]; ERROR: s[x]"),
        (NONE, [], False, "fail", o.FAIL, "no baseline at b.json: save one with --save-baseline"),
        (NONE, [], False, "pass", o.PASS, "no baseline"),
        (NONE, ["s[x]"], False, "pass", o.FAIL, "ERROR: s[x]"),
    ],
)
def test_gate_verdict(
    diff: dict[str, list[dict[str, str]]],
    errors: list[str],
    found: bool,
    on_missing: str,
    verdict: str,
    reason: str,
) -> None:
    got, why = o.gate_verdict(diff, errors, "b.json", found, on_missing)
    assert got == verdict
    assert why.startswith(reason), why
    assert o.exit_code("gate", got) == (0 if verdict == o.PASS else 1)


# -- bisect -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixed", "verdict", "after"),
    [
        (False, o.REPRODUCED, True),
        (False, o.NOT_REPRODUCED, False),
        (False, o.ERROR, None),  # retried, never guessed
        (True, o.NOT_REPRODUCED, True),
        (True, o.REPRODUCED, False),
        (True, o.ERROR, None),
    ],
)
def test_bisect_probe(fixed: bool, verdict: str, after: bool | None) -> None:
    assert o.probe_after(verdict, o.bisect_target(fixed)) is after


def test_a_probe_is_tried_twice() -> None:
    assert o.PROBE_TRIES == 2


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "result", "code"),
    [
        ("reproduce", o.REPRODUCED, 0),
        ("reproduce", o.NOT_REPRODUCED, 1),
        ("reproduce", o.ERROR, 3),
        ("replay", o.REPRODUCED, 0),
        ("replay", o.NOT_REPRODUCED, 1),
        ("replay", o.ERROR, 3),
        ("verify-fix", o.FIXED, 0),
        ("verify-fix", o.NOT_FIXED, 1),
        ("verify-fix", o.REGRESSION, 1),
        ("verify-fix", o.INCONCLUSIVE, 1),
        ("verify-fix", o.ERROR, 3),
        ("matrix", o.PASS, 0),
        ("matrix", o.FAIL, 1),
        ("matrix", o.LOST, 3),
        ("gate", o.PASS, 0),
        ("gate", o.FAIL, 1),
        ("bisect", o.FOUND, 0),
        ("bisect", o.NO_TRANSITION, 1),
        ("bisect", o.ERROR, 3),
        ("escalate", o.ATTACHED, 0),
        ("escalate", o.TRACKER_DOWN, 3),
        ("validate", o.VALID, 0),
        ("validate", o.INVALID, 2),
    ],
)
def test_exit_code(verb: str, result: str, code: int) -> None:
    assert o.exit_code(verb, result) == code


def test_every_result_of_every_verb_is_tested() -> None:
    """The table above covers the whole of EXIT_CODES: a new word needs a row."""
    rows = {
        (v, r)
        for mark in test_exit_code.pytestmark  # type: ignore[attr-defined]
        if mark.name == "parametrize"
        for v, r, _ in mark.args[1]
    }
    assert rows == {(v, r) for v, table in o.EXIT_CODES.items() for r in table}


@pytest.mark.parametrize("verb", o.NO_VERDICT)
def test_verbs_without_a_verdict_exit_0(verb: str) -> None:
    assert o.exit_code(verb) == 0


@pytest.mark.parametrize(
    ("verb", "result"),
    [("reproduce", o.INCOMPLETE), ("reproduce", None), ("gate", o.ERROR), ("nosuch", None)],
)
def test_no_exit_code_is_made_up(verb: str, result: str | None) -> None:
    with pytest.raises(ValueError):
        o.exit_code(verb, result)


@pytest.mark.parametrize(
    ("result", "code"),
    [(o.validate_result(0), 0), (o.validate_result(3), 2)],
)
def test_validate(result: str, code: int) -> None:
    assert o.exit_code("validate", result) == code


@pytest.mark.parametrize(
    ("failed", "code"),
    [(False, 0), (True, 3)],
)
def test_escalate(failed: bool, code: int) -> None:
    assert o.exit_code("escalate", o.escalate_result(failed)) == code


def test_usage_infra_and_signals() -> None:
    from harness.errors import InfraError, Interrupted, UsageError
    from harness.run.signals import SignalInterrupt

    assert (o.USAGE, o.INFRA) == (2, 3)
    assert UsageError("x").exit_code == 2 and InfraError("x").exit_code == 3
    assert Interrupted("x").exit_code == o.INTERRUPTED == 130
    assert SignalInterrupt(signal.SIGINT).exit_code == 130
    assert SignalInterrupt(signal.SIGTERM).exit_code == o.interrupted_exit(signal.SIGTERM) == 143


def test_the_words_are_the_on_disk_strings() -> None:
    """results.json, journal.json and --json carry these exact strings."""
    assert [o.REPRODUCED, o.NOT_REPRODUCED, o.ERROR] == ["REPRODUCED", "NOT_REPRODUCED", "ERROR"]
    assert [o.FIXED, o.NOT_FIXED, o.REGRESSION, o.INCONCLUSIVE] == [
        "FIXED",
        "NOT_FIXED",
        "REGRESSION",
        "INCONCLUSIVE",
    ]
    assert o.CELL_STATUSES == ("PASS", "FAIL", "ERROR", "SKIP")
    assert [o.FOUND, o.NO_TRANSITION] == ["FOUND", "NO_TRANSITION"]
    assert o.COMPARISONS == ("regressions", "fixed", "new", "removed")
    for word in (o.REPRODUCED, o.PASS, o.FIXED, o.FOUND):
        assert type(word) is str
