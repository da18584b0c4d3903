"""`lab triage PATH...`: the known problems that match a piece of evidence, best first, and why.

The evidence is read by `lab analyze` (the same analyzers: tshark for captures, each lab's log
signatures); known problems come from the project's known-problems/ folder and from every
escalation the local ledger holds with the signatures its run showed (recorded by `lab
escalate`). Ranking is harness/scenario/known_problems.py:rank, pure.
"""

from __future__ import annotations

from pathlib import Path

from harness.findings_model import Finding
from harness.scenario.known_problems import (
    KnownProblem,
    KnownProblemDef,
    Match,
    Seen,
    load_known_problems,
    rank,
)
from harness.verbs.results import TriageMatch, TriageResult


def _where(f: Finding, given: list[Path]) -> str:
    """Where a finding was first seen, its file relative to the folder given (a run folder:
    `captures/dmz.pcap frame 9`, `artifacts/db/container.log:9`)."""
    source = Path(f.source)
    for base in given:
        if base.is_dir() and source.is_relative_to(base):
            source = source.relative_to(base)
            break
    if f.first_frame is not None:
        return f"{source} frame {f.first_frame}"
    return f"{source}:{f.first_line}" if f.first_line is not None else str(source)


def escalated_problems(root: Path) -> list[KnownProblem]:
    """Every escalation in the local ledger that recorded its run's signatures, as a known
    problem: its ticket, the scenario's title, the fix a verification found FIXED."""
    from harness.verbs.escalate import read_ledger

    out: dict[str, KnownProblem] = {}
    for e in read_ledger(root):
        signatures = [str(s) for s in e.get("signatures") or []]
        if not signatures:
            continue
        ticket = str(e.get("ticket"))
        url = next((t.get("url") for t in e.get("trackers") or [] if t.get("url")), None)
        d = KnownProblemDef(
            title=str(e.get("title") or e.get("scenario") or ticket),
            signatures=signatures,
            fix=e.get("fix"),
            link=url,
        )
        key = f"{ticket}:{e.get('run')}"
        out[key] = KnownProblem(ticket, f"escalation {ticket} ({e.get('run')})", d, True)
    return list(out.values())


def _match(m: Match) -> TriageMatch:
    d = m.problem.definition
    return TriageMatch(
        id=m.problem.id,
        title=d.title,
        source=m.problem.source,
        score=round(m.score, 3),
        matched=[p for p, _ in m.matched],
        missing=list(m.missing),
        why=m.why(),
        fix=d.fix,
        link=d.link,
        cases=list(d.cases),
    )


def triage(paths: list[str], *, root: Path) -> TriageResult:
    """Analyze `paths` (BadEvidence, exit 2, when one is unreadable) and rank the known
    problems against the signatures seen."""
    from harness.verbs.analyze import analyze

    evidence = analyze(paths, root=root)
    given = [Path(p) for p in paths]
    seen = [
        Seen(f.signature, _where(f, given), f.count) for s in evidence.sources for f in s.findings
    ]
    problems = load_known_problems(root) + escalated_problems(root)
    return TriageResult(
        paths=paths,
        signatures=evidence.signatures,
        known=len(problems),
        matches=[_match(m) for m in rank(problems, seen)],
    )


def render_lines(r: TriageResult) -> list[str]:
    if not r.matches:
        seen = ", ".join(r.signatures) or "no findings"
        return [f"no known problem matches ({r.known} known; the evidence shows: {seen})"]
    lines: list[str] = []
    for i, m in enumerate(r.matches, 1):
        lines.append(f"{i}. {m.id}  {m.score:.0%}  {m.title}  [{m.source}]")
        lines += [f"     {w}" for w in m.why]
        if m.fix:
            lines.append(f"     fix: {m.fix}")
        if m.link:
            lines.append(f"     link: {m.link}")
        if m.cases:
            lines.append(f"     reproduce: lab reproduce {m.cases[0]}")
    return lines
