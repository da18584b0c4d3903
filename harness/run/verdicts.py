"""Verdicts from results: pure functions, so every rule is unit-tested and written in one place.

reproduce:  REPRODUCED (k/n, k >= 1) | NOT_REPRODUCED | ERROR (an attempt could not run)
verify-fix: FIXED | NOT_FIXED | REGRESSION | INCONCLUSIVE | ERROR
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REPRODUCED = "REPRODUCED"
NOT_REPRODUCED = "NOT_REPRODUCED"
ERROR = "ERROR"
FIXED = "FIXED"
NOT_FIXED = "NOT_FIXED"
REGRESSION = "REGRESSION"
INCONCLUSIVE = "INCONCLUSIVE"

EXIT = {
    REPRODUCED: 0,
    NOT_REPRODUCED: 1,
    FIXED: 0,
    NOT_FIXED: 1,
    REGRESSION: 1,
    INCONCLUSIVE: 1,
    ERROR: 3,
}


@dataclass(frozen=True)
class Reproduction:
    verdict: str
    observed: int  # attempts in which the symptom held
    attempts: int  # attempts that ran to the end
    planned: int
    reason: str

    @property
    def rate(self) -> str:
        return f"{self.observed}/{self.attempts}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "observed": self.observed,
            "attempts": self.attempts,
            "planned": self.planned,
            "rate": self.rate,
            "reason": self.reason,
        }


def reproduction(attempts: list[dict[str, Any]], planned: int) -> Reproduction:
    """Each attempt: {"observed": bool, "error": str | None}. An attempt that could not run makes
    the verdict ERROR: a symptom we failed to look for is never 'not reproduced'."""
    errors = [a for a in attempts if a.get("error")]
    done = [a for a in attempts if not a.get("error")]
    k = sum(1 for a in done if a.get("observed"))
    if errors:
        return Reproduction(
            ERROR, k, len(done), planned, f"attempt could not run: {errors[0]['error']}"
        )
    if len(done) < planned:
        return Reproduction(
            ERROR, k, len(done), planned, f"only {len(done)} of {planned} attempts ran"
        )
    if k:
        return Reproduction(
            REPRODUCED, k, len(done), planned, f"symptom observed in {k} of {len(done)}"
        )
    return Reproduction(NOT_REPRODUCED, 0, len(done), planned, f"symptom absent in all {len(done)}")


def checks_green(checks: list[dict[str, Any]]) -> bool:
    return all(c.get("passed") for c in checks)


def fix_verdict(
    baseline: Reproduction,
    candidate: Reproduction,
    baseline_checks: list[dict[str, Any]],
    candidate_checks: list[dict[str, Any]],
) -> tuple[str, str]:
    """(verdict, reason). REGRESSION wins over NOT_FIXED: breaking what worked is louder news."""
    if ERROR in (baseline.verdict, candidate.verdict):
        side = "baseline" if baseline.verdict == ERROR else "candidate"
        reason = baseline.reason if side == "baseline" else candidate.reason
        return ERROR, f"{side}: {reason}"
    before = {c["name"]: bool(c.get("passed")) for c in baseline_checks}
    broke = [c["name"] for c in candidate_checks if not c.get("passed") and before.get(c["name"])]
    if baseline.verdict != REPRODUCED:
        return INCONCLUSIVE, f"the baseline did not reproduce ({baseline.rate}): nothing to fix"
    if broke:
        return (
            REGRESSION,
            f"checks passing on the baseline fail with the candidate: {', '.join(broke)}",
        )
    if candidate.verdict == REPRODUCED:
        return NOT_FIXED, f"symptom still observed with the candidate ({candidate.rate})"
    if not checks_green(candidate_checks):
        failing = [c["name"] for c in candidate_checks if not c.get("passed")]
        return INCONCLUSIVE, (
            f"symptom gone ({candidate.rate}) but checks were failing on the baseline too: "
            f"{', '.join(failing)}"
        )
    return FIXED, f"baseline {baseline.rate}, candidate {candidate.rate}, checks green"
