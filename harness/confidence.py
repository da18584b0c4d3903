"""How much k of n proves: the 95% (or any) interval of a rate, and how many clean attempts a
candidate needs before "absent every time" supports FIXED. Pure arithmetic, no I/O; the verdict
rules that use it are in harness/outcomes.py. Formulas and worked examples: docs/reproduce.md,
"Confidence"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

DEFAULT: float = 0.95
_EPS = 1e-9  # log ratios that are whole numbers in exact arithmetic must not round up


def _check(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")


def z_score(confidence: float = DEFAULT) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    _check(confidence)
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


@dataclass(frozen=True)
class Interval:
    """A rate's confidence interval, as fractions of 1."""

    low: float
    high: float
    confidence: float

    def text(self) -> str:
        """How the terminal, reports and the ticket print it: `95% CI 7-65%`."""
        pct = round(self.confidence * 100, 1)
        label = f"{pct:g}%"
        return f"{label} CI {_pct(self.low)}-{_pct(self.high)}%"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}"


def wilson(k: int, n: int, confidence: float = DEFAULT) -> Interval:
    """Wilson's score interval for k successes in n trials. Unlike k/n +- z*sqrt(...) it stays
    inside [0, 1] and is honest at 0/n and n/n, which is where escalations live (0 of 3, 3 of
    3). n = 0 says nothing: [0, 1]."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got {k}/{n}")
    if n == 0:
        return Interval(0.0, 1.0, confidence)
    z = z_score(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(low, high, confidence)


def attempts_needed(k: int, n: int, confidence: float = DEFAULT) -> int | None:
    """Clean attempts a candidate needs so that, were the problem still there at the baseline's
    observed rate p = k/n, seeing it in none of them would happen with probability at most
    1 - confidence: the least m with (1 - p)^m <= 1 - confidence. None when the baseline never
    showed the symptom (no rate: nothing to rule out). Baseline 3/10 at 0.95: 9; 1/1: 1."""
    _check(confidence)
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got {k}/{n}")
    if k == 0:
        return None
    p = k / n
    if p >= 1:
        return 1
    return max(1, math.ceil(math.log(1 - confidence) / math.log(1 - p) - _EPS))


def rules_out(k: int, n: int, absent: int, confidence: float = DEFAULT) -> bool:
    """Do `absent` attempts without the symptom support FIXED against a baseline of k/n?"""
    needed = attempts_needed(k, n, confidence)
    return needed is not None and absent >= needed


DEFAULT_BUDGET = 30


@dataclass(frozen=True)
class AttemptRule:
    """How many attempts a run makes. Without a confidence: exactly `least`. With one: a run
    that hopes to see the symptom (reproduce, a baseline, a cell, a probe) keeps going after
    `least` until the symptom shows once; a candidate keeps going until it has as many clean
    attempts as `baseline` (k, n) needs at that level, and stops at the first observation (one
    is enough for NOT_FIXED). Never more than `budget`."""

    least: int = 1
    level: float | None = None
    budget: int = DEFAULT_BUDGET
    candidate: bool = False
    baseline: tuple[int, int] | None = None

    def target(self) -> int:
        """The attempts this rule aims at when the symptom never shows (the plan)."""
        if self.level is None:
            return self.least
        if not self.candidate:
            return max(self.least, self.budget)
        needed = None
        if self.baseline is not None and self.baseline[1] > 0:
            needed = attempts_needed(*self.baseline, self.level)
        return min(self.budget, max(self.least, needed or self.least))

    def more(self, ran: int, observed: int) -> bool:
        """Should attempt ran + 1 run, after `observed` of `ran` showed the symptom?"""
        if self.level is None:
            return ran < self.least
        if ran < self.least and not (self.candidate and observed):
            return True
        return observed == 0 and ran < self.target()
