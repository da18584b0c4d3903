"""The confidence arithmetic behind k/n and the planned-attempts rule (harness/confidence.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.confidence import AttemptRule, Interval, attempts_needed, rules_out, wilson, z_score


def test_z_for_95_percent_is_1_96() -> None:
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 3, 0.0, 0.5615),  # the "rule of three" region: 0 of 3 still allows 56%
        (3, 3, 0.4385, 1.0),
        (3, 10, 0.1078, 0.6032),  # Newcombe (1998), table I style check
        (1, 1, 0.2065, 1.0),
        (0, 30, 0.0, 0.1135),  # about 3/n: 0.1
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got.low == pytest.approx(low, abs=5e-4)
    assert got.high == pytest.approx(high, abs=5e-4)


def test_no_attempts_say_nothing() -> None:
    assert wilson(0, 0) == Interval(0.0, 1.0, 0.95)


def test_interval_text() -> None:
    assert wilson(3, 10).text() == "95% CI 11-60%"
    assert wilson(0, 3, 0.9).text() == "90% CI 0-47%"


@pytest.mark.parametrize(
    ("k", "n", "confidence", "needed"),
    [
        (3, 10, 0.95, 9),  # the example: 3 of 3 clean is not enough, 9 is
        (1, 1, 0.95, 1),
        (10, 10, 0.95, 1),
        (1, 2, 0.95, 5),
        (1, 10, 0.95, 29),
        (1, 2, 0.75, 2),  # (1/2)^2 == 1/4 exactly: must not round up to 3
        (1, 10, 0.99, 44),
    ],
)
def test_attempts_needed(k: int, n: int, confidence: float, needed: int) -> None:
    assert attempts_needed(k, n, confidence) == needed


def test_a_baseline_that_never_showed_it_gives_nothing_to_rule_out() -> None:
    assert attempts_needed(0, 5) is None
    assert not rules_out(0, 5, 100)


def test_rules_out() -> None:
    assert not rules_out(3, 10, 3)
    assert rules_out(3, 10, 9)


@pytest.mark.parametrize(("k", "n"), [(-1, 3), (4, 3), (0, -1)])
def test_bad_counts_are_refused(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="k <= n"):
        wilson(k, n)


@pytest.mark.parametrize("c", [0.0, 1.0, 1.5, -0.1])
def test_bad_confidence_is_refused(c: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        attempts_needed(1, 2, c)


counts = st.integers(min_value=1, max_value=500).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
levels = st.floats(min_value=0.5, max_value=0.999)


@given(counts, levels)
def test_interval_holds_the_rate_and_stays_in_bounds(kn: tuple[int, int], c: float) -> None:
    k, n = kn
    got = wilson(k, n, c)
    assert 0.0 <= got.low <= k / n <= got.high <= 1.0


@given(counts, levels)
def test_a_higher_confidence_never_narrows(kn: tuple[int, int], c: float) -> None:
    k, n = kn
    narrow, wide = wilson(k, n, c), wilson(k, n, min(0.9999, c + 0.04))
    assert wide.low <= narrow.low + 1e-12
    assert wide.high >= narrow.high - 1e-12


@given(counts, levels)
def test_needed_is_the_least_that_rules_out(kn: tuple[int, int], c: float) -> None:
    k, n = kn
    m = attempts_needed(k, n, c)
    if k == 0:
        assert m is None
        return
    assert m is not None and m >= 1
    miss = 1 - k / n
    assert miss**m <= (1 - c) * (1 + 1e-6)
    if m > 1:
        assert miss ** (m - 1) > (1 - c) * (1 - 1e-6)
    assert not math.isnan(miss)


def _run(rule: AttemptRule, outcomes: list[bool]) -> int:
    """Attempts made under `rule` when attempt i shows the symptom iff outcomes[i]."""
    ran = observed = 0
    while rule.more(ran, observed):
        observed += outcomes[ran]
        ran += 1
    return ran


def test_without_a_confidence_exactly_the_attempts_run() -> None:
    assert _run(AttemptRule(least=3), [True] * 10) == 3
    assert _run(AttemptRule(least=3), [False] * 10) == 3


def test_a_baseline_stops_at_its_first_observation() -> None:
    rule = AttemptRule(least=1, level=0.95, budget=10)
    assert _run(rule, [False, False, True] + [False] * 10) == 3
    assert _run(rule, [False] * 20) == 10  # never seen: the whole budget
    assert rule.target() == 10


def test_a_baseline_with_more_attempts_runs_them_all_for_its_rate() -> None:
    rule = AttemptRule(least=5, level=0.95, budget=10)
    assert _run(rule, [True] + [False] * 20) == 5


def test_a_candidate_runs_what_the_baseline_rate_needs() -> None:
    rule = AttemptRule(least=1, level=0.95, budget=30, candidate=True, baseline=(3, 10))
    assert rule.target() == 9
    assert _run(rule, [False] * 40) == 9
    assert _run(rule, [False, True] + [False] * 40) == 2  # seen once: NOT_FIXED, stop


def test_a_candidate_is_capped_by_the_budget() -> None:
    rule = AttemptRule(least=1, level=0.95, budget=5, candidate=True, baseline=(3, 10))
    assert _run(rule, [False] * 40) == 5


def test_a_candidate_without_a_baseline_rate_runs_its_least() -> None:
    rule = AttemptRule(least=2, level=0.95, candidate=True, baseline=(0, 4))
    assert _run(rule, [False] * 40) == 2
