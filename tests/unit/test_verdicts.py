"""Verdict rules, one table: every verdict reachable, and the precedence between them."""

from __future__ import annotations

from typing import Any

import pytest

from harness.run import verdicts as v


def att(observed: bool = False, error: str | None = None) -> dict[str, Any]:
    return {"observed": observed, "error": error}


@pytest.mark.parametrize(
    ("attempts", "planned", "verdict", "rate"),
    [
        ([att(True), att(True)], 2, v.REPRODUCED, "2/2"),
        ([att(False), att(True), att(False)], 3, v.REPRODUCED, "1/3"),
        ([att(False), att(False)], 2, v.NOT_REPRODUCED, "0/2"),
        ([att(False), att(error="node db is exited")], 2, v.ERROR, "0/1"),
        ([att(True)], 3, v.ERROR, "1/1"),  # attempts missing: never NOT_REPRODUCED
    ],
)
def test_reproduction(
    attempts: list[dict[str, Any]], planned: int, verdict: str, rate: str
) -> None:
    r = v.reproduction(attempts, planned)
    assert (r.verdict, r.rate) == (verdict, rate)


def test_error_is_never_not_reproduced() -> None:
    r = v.reproduction([att(error="engine lost")], 1)
    assert r.verdict == v.ERROR and "engine lost" in r.reason
    assert v.EXIT[r.verdict] == 3


def rep(verdict: str, k: int = 0, n: int = 3) -> v.Reproduction:
    return v.Reproduction(verdict, k, n, n, "")


OK = [{"name": "c1", "passed": True}]
BAD = [{"name": "c1", "passed": False}]


@pytest.mark.parametrize(
    ("base", "cand", "bchecks", "cchecks", "expected"),
    [
        (rep(v.REPRODUCED, 3), rep(v.NOT_REPRODUCED), OK, OK, v.FIXED),
        (rep(v.REPRODUCED, 3), rep(v.REPRODUCED, 1), OK, OK, v.NOT_FIXED),
        (rep(v.REPRODUCED, 3), rep(v.NOT_REPRODUCED), OK, BAD, v.REGRESSION),
        (rep(v.REPRODUCED, 3), rep(v.REPRODUCED, 2), OK, BAD, v.REGRESSION),
        (rep(v.NOT_REPRODUCED), rep(v.NOT_REPRODUCED), OK, OK, v.INCONCLUSIVE),
        (rep(v.REPRODUCED, 3), rep(v.NOT_REPRODUCED), BAD, BAD, v.INCONCLUSIVE),
        (rep(v.ERROR), rep(v.NOT_REPRODUCED), OK, OK, v.ERROR),
        (rep(v.REPRODUCED, 3), rep(v.ERROR), OK, OK, v.ERROR),
        (rep(v.REPRODUCED, 3), rep(v.NOT_REPRODUCED), [], [], v.FIXED),
    ],
)
def test_fix_verdict(
    base: v.Reproduction,
    cand: v.Reproduction,
    bchecks: list[dict[str, Any]],
    cchecks: list[dict[str, Any]],
    expected: str,
) -> None:
    verdict, reason = v.fix_verdict(base, cand, bchecks, cchecks)
    assert verdict == expected, reason
    assert reason
