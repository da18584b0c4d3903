"""Symptom probes: conditions on step results and node observations. Pure: plain data in and out.

A probe answers 'did the customer's symptom show?' with evidence a person can read: which value
was seen, against which expectation.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from harness.scenario.schema import (
    AllProbe,
    AnyProbe,
    FileProbe,
    FindingProbe,
    LogProbe,
    ReadyProbe,
    StepProbe,
)

Probe = ReadyProbe | StepProbe | LogProbe | FileProbe | FindingProbe | AnyProbe | AllProbe


@dataclass(frozen=True)
class Seen:
    """A finding during the attempt (harness.findings_model.Finding, as much as a probe needs)."""

    signature: str
    count: int
    where: str


# ("log", node, path or "") / ("file", node, path) -> text, or None when not there;
# ("capture-findings", network, "") / ("log-findings", node, path) -> the findings seen during
# the attempt, or None when they could not be read
Observations = dict[tuple[str, str, str], str | list[Seen] | None]
# node -> how it failed to become ready ({"state", "exit_code", "reason", "log"}); a node
# that is not there became ready
Readiness = dict[str, dict[str, Any]]


@dataclass
class ProbeResult:
    probe: str
    held: bool
    evidence: list[str]
    children: list[ProbeResult] | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"probe": self.probe, "held": self.held, "evidence": self.evidence}
        if self.children is not None:
            d["children"] = [c.as_dict() for c in self.children]
        return d


def tolerance_holds(expected: Any, actual: int | None) -> bool:
    if actual is None:
        return False
    if isinstance(expected, list):
        return actual in expected
    if isinstance(expected, dict):
        return bool(actual != expected["not"])
    return bool(actual == expected)


def _tol_text(expected: Any) -> str:
    if isinstance(expected, list):
        return f"one of {expected}"
    if isinstance(expected, dict):
        return f"not {expected['not']}"
    return str(expected)


def _short(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _regex(name: str, pattern: str, text: str, ev: list[str]) -> bool:
    m = re.search(pattern, text, re.MULTILINE)
    ev.append(
        f"{name} matches /{pattern}/: {_short(m.group(0))!r}"
        if m
        else f"{name} does not match /{pattern}/ (got {_short(text)!r})"
    )
    return m is not None


def describe(probe: Probe) -> str:
    if isinstance(probe, ReadyProbe):
        given = [f"exit_code={probe.exit_code}"] if probe.exit_code is not None else []
        given += [f"oom_killed={probe.oom_killed}"] if probe.oom_killed is not None else []
        given += [f"log /{probe.log}/"] if probe.log is not None else []
        return f"node {probe.node} {probe.state}" + (": " + ", ".join(given) if given else "")
    if isinstance(probe, StepProbe):
        conds = probe.model_dump(exclude_none=True, exclude={"step"}, by_alias=True)
        return f"step {probe.step}: " + ", ".join(f"{k}={v}" for k, v in conds.items())
    if isinstance(probe, LogProbe):
        return f"log on {probe.on}{' ' + probe.path if probe.path else ''} /{probe.log}/"
    if isinstance(probe, FileProbe):
        return f"file {probe.on}:{probe.file}" + (f" /{probe.matches}/" if probe.matches else "")
    if isinstance(probe, FindingProbe):
        where = f"on {probe.network} capture" if probe.network else f"on {probe.on}"
        where += f" {probe.path}" if probe.path else ""
        count = f" count={probe.count}" if probe.count is not None else ""
        return f"finding {probe.finding} {where}{count}"
    return "any" if isinstance(probe, AnyProbe) else "all"


def finding_key(probe: FindingProbe) -> tuple[str, str, str]:
    if probe.network:
        return ("capture-findings", probe.network, "")
    return ("log-findings", probe.on or "", probe.path or "")


def _finding(probe: FindingProbe, obs: Observations) -> ProbeResult:
    """Held when the findings seen during the attempt include the signature (a shell pattern),
    as often as `count` asks (default: at least once)."""
    seen = obs.get(finding_key(probe))
    if not isinstance(seen, list):
        why = seen if isinstance(seen, str) else "no findings could be read"
        return ProbeResult(describe(probe), False, [why])
    hits = [s for s in seen if fnmatch.fnmatchcase(s.signature, probe.finding)]
    total = sum(s.count for s in hits)
    held = tolerance_holds(probe.count, total) if probe.count is not None else total > 0
    showed = ", ".join(sorted({s.signature for s in seen})) or "no findings"
    ev = [f"{s.signature} x{s.count} ({s.where})" for s in hits]
    ev = ev or [f"not seen; the attempt showed: {showed}"]
    return ProbeResult(describe(probe), held, ev)


def _step(probe: StepProbe, results: dict[str, dict[str, Any]]) -> ProbeResult:
    r = results.get(probe.step)
    if r is not None and r.get("skipped"):
        return ProbeResult(describe(probe), False, [f"step {probe.step} skipped: {r['skipped']}"])
    if r is None or r.get("error"):
        why = "did not run" if r is None else f"could not run: {r['error']}"
        return ProbeResult(describe(probe), False, [f"step {probe.step} {why}"])
    ev: list[str] = []
    ok = True
    if probe.exit_code is not None:
        held = tolerance_holds(probe.exit_code, r.get("exit_code"))
        ev.append(f"exit code {r.get('exit_code')} (expected {_tol_text(probe.exit_code)})")
        ok &= held
    if probe.status is not None:
        held = tolerance_holds(probe.status, r.get("status"))
        ev.append(f"HTTP status {r.get('status')} (expected {_tol_text(probe.status)})")
        ok &= held
    for name in ("stdout", "stderr"):
        pattern = getattr(probe, name)
        if pattern is not None:
            ok &= _regex(name, pattern, r.get(name) or "", ev)
    if probe.output is not None:
        ok &= _regex(
            "output", probe.output, f"{r.get('stdout') or ''}\n{r.get('stderr') or ''}", ev
        )
    d = float(r.get("duration_s") or 0.0)
    if probe.duration_lt is not None:
        ok &= d < probe.duration_lt
        ev.append(f"took {d:.2f}s (expected < {probe.duration_lt:g}s)")
    if probe.duration_gt is not None:
        ok &= d > probe.duration_gt
        ev.append(f"took {d:.2f}s (expected > {probe.duration_gt:g}s)")
    return ProbeResult(describe(probe), bool(ok), ev)


def _ready(probe: ReadyProbe, ready: Readiness) -> ProbeResult:
    """Holds when the node did not become ready (state exited: its container exited), its exit
    code and output matching when given."""
    failed = ready.get(probe.node)
    if failed is None:
        return ProbeResult(describe(probe), False, [f"node {probe.node} became ready"])
    state = str(failed.get("state"))
    ev = [f"node {probe.node} did not become ready: {failed.get('reason') or state}"]
    ok = probe.state == "not_ready" or state == "exited"
    if probe.state == "exited" and state != "exited":
        ev.append(f"it did not exit ({state}; expected exited)")
    if probe.exit_code is not None:
        code = failed.get("exit_code")
        ok &= tolerance_holds(probe.exit_code, code)
        ev.append(f"exit code {code} (expected {_tol_text(probe.exit_code)})")
    if probe.oom_killed is not None:
        killed = bool(failed.get("oom_killed"))
        ok &= killed == probe.oom_killed
        ev.append(f"killed by the OOM killer: {'yes' if killed else 'no'}")
    if probe.log is not None:
        ok &= _regex("log", probe.log, str(failed.get("log") or ""), ev)
    return ProbeResult(describe(probe), bool(ok), ev)


def _file(probe: FileProbe, obs: Observations) -> ProbeResult:
    text = obs.get(("file", probe.on, probe.file))
    if not isinstance(text, str):
        return ProbeResult(describe(probe), False, [f"{probe.file} is not on {probe.on}"])
    if probe.matches is None:
        return ProbeResult(describe(probe), True, [f"{probe.file} exists on {probe.on}"])
    ev: list[str] = []
    return ProbeResult(describe(probe), _regex(probe.file, probe.matches, text, ev), ev)


def evaluate(
    probe: Probe,
    results: dict[str, dict[str, Any]],
    obs: Observations,
    ready: Readiness | None = None,
) -> ProbeResult:
    if isinstance(probe, ReadyProbe):
        return _ready(probe, ready or {})
    if isinstance(probe, StepProbe):
        return _step(probe, results)
    if isinstance(probe, LogProbe):
        text = obs.get(("log", probe.on, probe.path or ""))
        if not isinstance(text, str):
            return ProbeResult(describe(probe), False, [f"no log to read on {probe.on}"])
        ev: list[str] = []
        return ProbeResult(describe(probe), _regex("log", probe.log, text, ev), ev)
    if isinstance(probe, FileProbe):
        return _file(probe, obs)
    if isinstance(probe, FindingProbe):
        return _finding(probe, obs)
    kids = [
        evaluate(p, results, obs, ready)
        for p in (probe.any if isinstance(probe, AnyProbe) else probe.all)
    ]
    held = any(k.held for k in kids) if isinstance(probe, AnyProbe) else all(k.held for k in kids)
    return ProbeResult(describe(probe), held, [], kids)


def symptom(
    probes: list[Probe],
    results: dict[str, dict[str, Any]],
    obs: Observations,
    ready: Readiness | None = None,
) -> ProbeResult:
    """The symptom is the list of probes, all of which must hold."""
    kids = [evaluate(p, results, obs, ready) for p in probes]
    return ProbeResult("symptom", bool(kids) and all(k.held for k in kids), [], kids)


def observations_needed(probes: list[Probe]) -> list[tuple[str, str, str]]:
    """What must be read from the nodes at the end of an attempt for these probes."""
    out: list[tuple[str, str, str]] = []
    for p in probes:
        if isinstance(p, LogProbe):
            out.append(("log", p.on, p.path or ""))
        elif isinstance(p, FileProbe):
            out.append(("file", p.on, p.file))
        elif isinstance(p, FindingProbe):
            out.append(finding_key(p))
        elif isinstance(p, AnyProbe | AllProbe):
            out.extend(observations_needed(p.any if isinstance(p, AnyProbe) else p.all))
    return out


def may_not_start(probes: list[Probe]) -> frozenset[str]:
    """The nodes a symptom expects may not start: those its readiness probes name (at any
    depth). Bring-up records their failure instead of stopping the run."""
    out: set[str] = set()
    for p in probes:
        if isinstance(p, ReadyProbe):
            out.add(p.node)
        elif isinstance(p, AnyProbe | AllProbe):
            out |= may_not_start(p.any if isinstance(p, AnyProbe) else p.all)
    return frozenset(out)
