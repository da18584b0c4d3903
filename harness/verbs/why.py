"""Why a verdict came out as it did, in a few lines the terminal prints last: the probe or check
that decided, what it expected and what it got. Read from the typed results alone (the probes'
evidence the run recorded), so it says nothing the run folder does not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness import outcomes
from harness.run.result import AttemptResult, RunResult

MAX_LINES = 6
_CUT = 160


def _short(text: object) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= _CUT else s[: _CUT - 3] + "..."


def _leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The probes under a symptom tree (any/all flattened), in order."""
    kids = node.get("children")
    if not kids:
        return [node]
    out: list[Mapping[str, Any]] = []
    for k in kids:
        out += _leaves(k)
    return out


def _probe_lines(attempt: AttemptResult, held: bool) -> list[str]:
    lines = []
    for p in _leaves(attempt.symptom):
        if p.get("probe") == "symptom" or bool(p.get("held")) != held:
            continue
        evidence = "; ".join(_short(e) for e in p.get("evidence") or []) or "no evidence recorded"
        lines.append(f"attempt {attempt.attempt}: probe {p.get('probe')}: {evidence}")
    return lines


def not_reproduced(r: RunResult) -> list[str]:
    """Which probe did not hold, in the last attempt, with what it saw."""
    done = [a for a in r.attempt_results if not a.error]
    if not done:
        return []
    return _probe_lines(done[-1], held=False)[:MAX_LINES]


def still_observed(r: RunResult) -> list[str]:
    """Where a candidate still showed the symptom: the first attempt that did, its probes."""
    seen = next((a for a in r.attempt_results if a.observed and not a.error), None)
    return _probe_lines(seen, held=True)[:MAX_LINES] if seen else []


def broken_checks(
    baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The checks green on the baseline that fail with the candidate: expected and got."""
    before = {c.get("name"): outcomes.check_passed(c) for c in baseline}
    lines = []
    for c in candidate:
        if outcomes.check_passed(c) or not before.get(c.get("name")):
            continue
        got = f"exit {c.get('exit_code')}" if "exit_code" in c else "failed"
        want = f" (expected {c.get('expected')})" if c.get("expected") is not None else ""
        out = f"; output: {_short(c.get('output'))}" if c.get("output") else ""
        lines.append(f"check {c.get('name')}: {got}{want}{out}")
    return lines[:MAX_LINES]


def decided(r: RunResult) -> str:
    """The one probe that decided a run's verdict, for a one-line summary (`lab watch`): the
    first probe that held in the first attempt that showed the symptom; else the first that did
    not hold in the last attempt; else the error."""
    seen = still_observed(r)
    if seen:
        return seen[0]
    missing = not_reproduced(r)
    if missing:
        return missing[0]
    return _short(r.error or r.reason)


def run_lines(r: RunResult) -> list[str]:
    """The why of one run's verdict, for its role: empty when there is nothing to explain."""
    if r.verdict == outcomes.NOT_REPRODUCED and not outcomes.hopes_absent(r.role):
        return not_reproduced(r)
    return []


def fix_lines(verdict: str, baseline: RunResult, candidate: RunResult) -> list[str]:
    """The why of a verify-fix verdict."""
    if verdict == outcomes.REGRESSION:
        return broken_checks(baseline.checks, candidate.checks)
    if verdict == outcomes.NOT_FIXED:
        return still_observed(candidate)
    if verdict == outcomes.INCONCLUSIVE and baseline.verdict == outcomes.NOT_REPRODUCED:
        return not_reproduced(baseline)
    return []
