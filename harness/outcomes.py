"""Every outcome the harness decides, in one pure module: verdict words, the rules that pick
them, what each role hopes for, matrix cell status, gate and bisect results, and every verb's
exit code. Stdlib only, no I/O; verbs, reports, the console and the CLI import it and none
re-derives an outcome. The words are the on-disk and `--json` strings (DESIGN.md).

The verdict table, in words:

- `lab reproduce` (and `lab replay`, which reruns a bundle the same way): REPRODUCED when the
  symptom held in k >= 1 of the n attempts that ran (exit 0); NOT_REPRODUCED when it held in
  none of them (exit 1); ERROR when an attempt could not run, fewer attempts ran than planned
  or the run itself failed (a build, the engine, Ctrl-C): a symptom we failed to look for is
  never NOT_REPRODUCED (exit 3).
- `lab verify-fix`: a baseline run and a candidate run (the fix applied). ERROR when either
  side is ERROR (exit 3); else INCONCLUSIVE when the baseline did not reproduce (nothing to
  fix); else REGRESSION when a check that passed on the baseline fails with the candidate
  (louder news than NOT_FIXED, so it wins); else NOT_FIXED when the candidate still reproduces;
  else INCONCLUSIVE when the symptom is gone but checks fail on both sides; else, when the
  scenario asks for a `reproduce.confidence`, INCONCLUSIVE while the candidate's clean attempts
  are fewer than that level needs against the baseline's rate (harness/confidence.py); else
  FIXED (exit 0).
  Every verdict but FIXED exits 1.
- Roles: a reproduce run, a verify-fix baseline, a matrix cell and a bisect probe hope for
  REPRODUCED; a candidate hopes for NOT_REPRODUCED. A run "passed" for its role when it got
  the verdict it hoped for with its checks green (`--destroy passing` keeps the lab otherwise).
- `lab matrix` cells: ERROR when the run was ERROR (an infrastructure failure, never FAIL);
  FAIL when a check failed or the verdict is not the scenario's `reproduce.expect`; PASS
  otherwise; SKIP when the cell cannot be built as written or was not run. The matrix exits 0
  with no FAIL or ERROR cell, 1 otherwise, 3 when a cluster was lost before every cell ran.
- `lab gate`: per cell, against the baseline: regressions (PASS then, FAIL now), fixed (FAIL
  then, PASS now), new, removed. PASS (exit 0) only with no regression, no ERROR cell and a
  baseline (unless the gate says `on_missing_baseline: pass`); FAIL (exit 1) otherwise.
- `lab bisect`: a probe is 'after' when its verdict is REPRODUCED (NOT_REPRODUCED with
  --fixed); a probe that is ERROR twice makes the bisect ERROR (exit 3). FOUND (exit 0) when
  the first value is before and the last after; NO_TRANSITION (exit 1) otherwise.
- `lab escalate`: attached (exit 0); a tracker that is down after the local copy was made
  exits 3 (a refused ticket or key is a usage error, exit 2).
- `lab validate`: valid (exit 0) / invalid (exit 2).
- Every other verb (up, down, ls, gc, report, analyze, import, triage, ...) exits 0; `lab exec`
  exits with the command's own exit code.
- Whatever the verb: bad input exits 2, an infrastructure error 3, a signal 128 + its number
  (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from harness import confidence

# -- exit codes that do not depend on a verdict -------------------------------------------------

OK: Final = 0
USAGE: Final = 2  # bad input: a bad scenario, an unknown run, a wrong option
INFRA: Final = 3  # the engine, a build or the machine failed; also every ERROR verdict
SIGNAL_BASE: Final = 128


def interrupted_exit(signum: int) -> int:
    """A run ended by a signal exits 128 + the signal's number, as shells do."""
    return SIGNAL_BASE + signum


INTERRUPTED: Final = SIGNAL_BASE + int(signal.SIGINT)  # 130: Ctrl-C, or a cancelled run


def failure_exit(code: int) -> int:
    """The exit code of a failure that must not look like a verdict (a pytest session whose
    lab could not come up): bad input stays USAGE, anything else is INFRA."""
    return USAGE if code == USAGE else INFRA


# -- reproduce ----------------------------------------------------------------------------------

REPRODUCED: Final = "REPRODUCED"
NOT_REPRODUCED: Final = "NOT_REPRODUCED"
ERROR: Final = "ERROR"
ReproduceVerdict = Literal["REPRODUCED", "NOT_REPRODUCED", "ERROR"]
# what a scenario's `reproduce.expect` may name: the verdict a healthy matrix cell gives
Expectation = Literal["REPRODUCED", "NOT_REPRODUCED"]
# what a report reading a journal says when the run never recorded a verdict
INCOMPLETE: Final = "INCOMPLETE"  # the run has not ended (killed, or still running)
UNKNOWN: Final = "UNKNOWN"  # it ended without a verdict


@dataclass(frozen=True)
class Reproduction:
    verdict: str
    observed: int  # attempts in which the symptom held
    attempts: int  # attempts that ran to the end
    planned: int
    reason: str
    level: float = confidence.DEFAULT  # of the interval: the scenario's confidence, or 95%

    @property
    def rate(self) -> str:
        return f"{self.observed}/{self.attempts}"

    @property
    def interval(self) -> confidence.Interval:
        """What k/n says of the true rate: Wilson's interval at `level`."""
        return confidence.wilson(self.observed, self.attempts, self.level)

    def rate_text(self) -> str:
        """`3/10, 95% CI 11-60%`: how the terminal, reports and the ticket print the rate."""
        return rate_text(self.observed, self.attempts, self.level)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "observed": self.observed,
            "attempts": self.attempts,
            "planned": self.planned,
            "rate": self.rate,
            "reason": self.reason,
            "interval": interval_dict(self.interval),
        }

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> Reproduction:
        """Back from a run's result (`as_dict()`'s keys)."""
        interval = result.get("interval") or {}
        return cls(
            result["verdict"],
            result["observed"],
            result["attempts"],
            result["planned"],
            result["reason"],
            float(interval.get("confidence") or confidence.DEFAULT),
        )


def interval_dict(iv: confidence.Interval) -> dict[str, Any]:
    """An interval as the journal and `--json` carry it."""
    return {
        "low": round(iv.low, 4),
        "high": round(iv.high, 4),
        "confidence": iv.confidence,
        "text": iv.text(),
    }


def rate_text(observed: int | None, attempts: int | None, level: float | None = None) -> str:
    """k/n with its interval; just k/n when there were no attempts (nothing to bound)."""
    if observed is None or attempts is None:
        return ""
    if attempts <= 0 or not 0 <= observed <= attempts:
        return f"{observed}/{attempts}"
    iv = confidence.wilson(observed, attempts, level or confidence.DEFAULT)
    return f"{observed}/{attempts}, {iv.text()}"


def reproduction(
    attempts: Sequence[Mapping[str, Any]], planned: int, *, level: float = confidence.DEFAULT
) -> Reproduction:
    """Each attempt: {"observed": bool, "error": str | None}. An attempt that could not run makes
    the verdict ERROR: a symptom we failed to look for is never 'not reproduced'. `level`: of
    the rate's interval (the scenario's confidence)."""
    errors = [a for a in attempts if a.get("error")]
    done = [a for a in attempts if not a.get("error")]
    k, n = sum(1 for a in done if a.get("observed")), len(done)
    if errors:
        why = f"attempt could not run: {errors[0]['error']}"
        return Reproduction(ERROR, k, n, planned, why, level)
    if n < planned:
        return Reproduction(ERROR, k, n, planned, f"only {n} of {planned} attempts ran", level)
    if k:
        return Reproduction(REPRODUCED, k, n, planned, f"symptom observed in {k} of {n}", level)
    return Reproduction(NOT_REPRODUCED, 0, n, planned, f"symptom absent in all {n}", level)


def run_failed(
    attempts: Sequence[Mapping[str, Any]],
    planned: int,
    reason: str,
    *,
    level: float = confidence.DEFAULT,
) -> Reproduction:
    """The run itself failed (a build, the engine, a signal): ERROR, whatever the attempts
    that did run observed."""
    k = sum(bool(a["observed"]) for a in attempts)
    return Reproduction(ERROR, k, len(attempts), planned, reason, level)


def recorded_verdict(verdict: str, ended: bool) -> str:
    """The verdict a journal records, or what a report says when it records none."""
    if verdict:
        return verdict
    return UNKNOWN if ended else INCOMPLETE


AttemptState = Literal["ERROR", "observed", "absent"]


def attempt_state(error: object, observed: object) -> AttemptState:
    """One attempt as the terminal shows it: it could not run, or the symptom held or not."""
    if error:
        return "ERROR"
    return "observed" if observed else "absent"


# -- checks -------------------------------------------------------------------------------------


def check_passed(check: Mapping[str, Any]) -> bool:
    return bool(check.get("passed"))


def checks_green(checks: Iterable[Mapping[str, Any]]) -> bool:
    return all(check_passed(c) for c in checks)


# -- verify-fix ---------------------------------------------------------------------------------

FIXED: Final = "FIXED"
NOT_FIXED: Final = "NOT_FIXED"
REGRESSION: Final = "REGRESSION"
INCONCLUSIVE: Final = "INCONCLUSIVE"
FixVerdict = Literal["FIXED", "NOT_FIXED", "REGRESSION", "INCONCLUSIVE", "ERROR"]


def fix_verdict(
    baseline: Reproduction,
    candidate: Reproduction,
    baseline_checks: Sequence[Mapping[str, Any]],
    candidate_checks: Sequence[Mapping[str, Any]],
    confidence: float | None = None,
) -> tuple[str, str]:
    """(verdict, reason). REGRESSION wins over NOT_FIXED: breaking what worked is louder news.
    `confidence` (the scenario's `reproduce.confidence`): FIXED also needs enough clean
    candidate attempts to rule the baseline's rate out at that level (confidence.py)."""
    if ERROR in (baseline.verdict, candidate.verdict):
        side = "baseline" if baseline.verdict == ERROR else "candidate"
        reason = baseline.reason if side == "baseline" else candidate.reason
        return ERROR, f"{side}: {reason}"
    before = {c["name"]: check_passed(c) for c in baseline_checks}
    broke = [c["name"] for c in candidate_checks if not check_passed(c) and before.get(c["name"])]
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
        failing = [c["name"] for c in candidate_checks if not check_passed(c)]
        return INCONCLUSIVE, (
            f"symptom gone ({candidate.rate}) but checks were failing on the baseline too: "
            f"{', '.join(failing)}"
        )
    short = _too_few_to_claim(baseline, candidate, confidence)
    if short:
        return INCONCLUSIVE, short
    return FIXED, f"baseline {baseline.rate}, candidate {candidate.rate}, checks green"


def _too_few_to_claim(
    baseline: Reproduction, candidate: Reproduction, level: float | None
) -> str | None:
    """Why a clean candidate does not yet support FIXED at `level`, or None when it does."""
    if level is None:
        return None
    needed = confidence.attempts_needed(baseline.observed, baseline.attempts, level)
    if needed is None or candidate.attempts >= needed:
        return None
    return (
        f"candidate absent in {candidate.attempts} of {candidate.attempts}, needs {needed} to "
        f"claim FIXED at {level * 100:g}% for a baseline rate of {baseline.rate}"
    )


# -- roles: which verdict a run hopes for --------------------------------------------------------

Role = Literal["reproduce", "baseline", "candidate", "cell", "probe"]
ROLES: Final = ("reproduce", "baseline", "candidate", "cell", "probe")
HOPES_ABSENT: Final = ("candidate",)  # a fix applied: the symptom should be gone


def hopes_absent(role: str) -> bool:
    return role in HOPES_ABSENT


def hoped_verdict(role: str) -> str:
    """A candidate hopes for NOT_REPRODUCED; reproduce, baseline, cell and probe REPRODUCED."""
    return NOT_REPRODUCED if hopes_absent(role) else REPRODUCED


def run_passed(role: str, verdict: str, checks_ok: bool) -> bool:
    """Whether a run went as its role hoped: the hoped verdict, checks green."""
    return verdict == hoped_verdict(role) and checks_ok


def attempt_as_hoped(role: str, observed: bool) -> bool:
    """One attempt went as its run hoped: the symptom observed, or absent for a candidate."""
    return observed != hopes_absent(role)


RoleResult = Literal["hoped", "not hoped", "error"]


def role_result(role: str, verdict: str) -> RoleResult:
    """A run's verdict for its role, as reports show it: the hoped verdict, the other one, or
    an error (ERROR, or no verdict at all: INCOMPLETE, UNKNOWN)."""
    if verdict == hoped_verdict(role):
        return "hoped"
    if verdict in (REPRODUCED, NOT_REPRODUCED):
        return "not hoped"
    return "error"


# -- matrix cells -------------------------------------------------------------------------------

PASS: Final = "PASS"
FAIL: Final = "FAIL"
SKIP: Final = "SKIP"
CellStatus = Literal["PASS", "FAIL", "ERROR", "SKIP"]
CELL_STATUSES: Final = (PASS, FAIL, ERROR, SKIP)


def cell_status(verdict: str, checks_ok: bool, expect: str | None) -> CellStatus:
    """ERROR is never FAIL; FAIL when a check failed or the verdict is not the expected one."""
    if verdict == ERROR:
        return ERROR
    if not checks_ok:
        return FAIL
    if expect is not None and verdict != expect:
        return FAIL
    return PASS


def cell_summary(statuses: Iterable[str]) -> dict[str, int]:
    """How many cells have each status (every status present, 0 when none)."""
    out = dict.fromkeys(CELL_STATUSES, 0)
    for status in statuses:
        out[status] += 1
    return out


# the matrix as a whole, only for its exit code (not written anywhere)
LOST: Final = "LOST"  # a cluster went away before every cell ran
MatrixResult = Literal["PASS", "FAIL", "LOST"]


def matrix_result(summary: Mapping[str, int], lost: bool = False) -> MatrixResult:
    if lost:
        return LOST
    return FAIL if summary.get(FAIL) or summary.get(ERROR) else PASS


# -- gate ---------------------------------------------------------------------------------------

GateVerdict = Literal["PASS", "FAIL"]
REGRESSIONS: Final = "regressions"  # PASS in the baseline, FAIL now
FIXED_CELLS: Final = "fixed"  # FAIL in the baseline, PASS now
NEW: Final = "new"  # not in the baseline
REMOVED: Final = "removed"  # in the baseline, not run now
COMPARISONS: Final = (REGRESSIONS, FIXED_CELLS, NEW, REMOVED)
ON_MISSING_BASELINE: Final = ("fail", "pass")


def compare(
    now: Mapping[str, str], base: Mapping[str, str] | None
) -> dict[str, list[dict[str, str]]]:
    """Regressions, fixed, new and removed cells (cell key -> status on each side)."""
    out: dict[str, list[dict[str, str]]] = {k: [] for k in COMPARISONS}
    if base is None:
        return out
    for key, status in now.items():
        before = base.get(key)
        if before is None:
            out[NEW].append({"cell": key, "now": status})
        elif before == PASS and status == FAIL:
            out[REGRESSIONS].append({"cell": key, "baseline": before, "now": status})
        elif before == FAIL and status == PASS:
            out[FIXED_CELLS].append({"cell": key, "baseline": before, "now": status})
    for key, status in base.items():
        if key not in now:
            out[REMOVED].append({"cell": key, "baseline": status})
    return out


def gate_verdict(
    diff: Mapping[str, Sequence[Mapping[str, str]]],
    errors: Sequence[str],
    baseline: str | None,
    baseline_found: bool,
    on_missing_baseline: str = "fail",
) -> tuple[GateVerdict, str]:
    """(verdict, reason). `errors`: the keys of the cells that ended ERROR; `baseline`: the
    baseline file the gate names (for the reason)."""
    missing_fails = not baseline_found and on_missing_baseline == "fail"
    if missing_fails:
        return FAIL, (
            f"no baseline at {baseline}: save one with --save-baseline from the last release"
        )
    if diff[REGRESSIONS] or errors:
        parts = []
        if diff[REGRESSIONS]:
            parts.append("regressed: " + ", ".join(r["cell"] for r in diff[REGRESSIONS]))
        if errors:
            parts.append("ERROR: " + ", ".join(errors))
        return FAIL, "; ".join(parts)
    return PASS, (f"no regression against {baseline}" if baseline_found else "no baseline")


# -- bisect -------------------------------------------------------------------------------------

FOUND: Final = "FOUND"
NO_TRANSITION: Final = "NO_TRANSITION"
BisectResult = Literal["FOUND", "NO_TRANSITION", "ERROR"]
PROBE_TRIES: Final = 2  # a probe that ends ERROR is retried once, then reported


def bisect_target(fixed: bool) -> str:
    """The verdict of the 'after' side: the symptom appears (or, --fixed, disappears)."""
    return NOT_REPRODUCED if fixed else REPRODUCED


def probe_after(verdict: str, target: str) -> bool | None:
    """Whether a probe is on the 'after' side; None when it was ERROR (retry, never guess)."""
    if verdict == ERROR:
        return None
    return verdict == target


# -- escalate, validate -------------------------------------------------------------------------

ATTACHED: Final = "attached"
TRACKER_DOWN: Final = "tracker down"  # the local copy is made; the remote tracker failed
EscalateResult = Literal["attached", "tracker down"]


def escalate_result(tracker_failed: bool) -> EscalateResult:
    return TRACKER_DOWN if tracker_failed else ATTACHED


VALID: Final = "valid"
INVALID: Final = "invalid"
ValidateResult = Literal["valid", "invalid"]


def validate_result(problems: int) -> ValidateResult:
    return INVALID if problems else VALID


# -- every verb's exit code ---------------------------------------------------------------------

_REPRODUCE_EXIT: Final[Mapping[str, int]] = {REPRODUCED: 0, NOT_REPRODUCED: 1, ERROR: INFRA}

EXIT_CODES: Final[Mapping[str, Mapping[str, int]]] = {
    "reproduce": _REPRODUCE_EXIT,
    "replay": _REPRODUCE_EXIT,
    "verify-fix": {
        FIXED: 0,
        NOT_FIXED: 1,
        REGRESSION: 1,
        INCONCLUSIVE: 1,
        ERROR: INFRA,
    },
    "matrix": {PASS: 0, FAIL: 1, LOST: INFRA},
    "gate": {PASS: 0, FAIL: 1},
    "bisect": {FOUND: 0, NO_TRANSITION: 1, ERROR: INFRA},
    "escalate": {ATTACHED: 0, TRACKER_DOWN: INFRA},
    "validate": {VALID: 0, INVALID: USAGE},
}
# verbs without a verdict: 0 when they return at all (failures raise: exit 2 or 3)
NO_VERDICT: Final = (
    *("up", "down", "ls", "gc", "shell", "schema", "report", "escalations", "keys", "images"),
    *("worker", "analyze", "import", "triage", "serve"),
)


def exit_code(verb: str, result: str | None = None) -> int:
    """The exit code of `lab VERB` that ended with `result` (its verdict or result word)."""
    table = EXIT_CODES.get(verb)
    if table is None:
        if verb in NO_VERDICT:
            return OK
        raise ValueError(f"no exit code for the verb {verb!r}")
    if result is None or result not in table:
        raise ValueError(f"no exit code for {verb} ending {result!r}")
    return table[result]
