"""Log lines against the labs' signatures (labs/<lab>/lab.yaml `signatures:`): pure, over an
iterable of lines, so a 10 GB log streams through in constant memory.

One RE2 alternation of every applicable pattern scans each line once (linear time, whatever
the line); only a line it hits is tried against each pattern to say which matched.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.findings_model import Finding
from harness.scenario.catalog import Catalog, LogSignature, compile_signature

SAMPLE_MAX = 400  # characters of a line kept as a finding's sample


# Timestamps the catalog's software prints at the start of a line: nginx `2024/01/31 10:00:00`,
# PostgreSQL and ISO-8601 `2024-01-31 10:00:00.123 UTC`, Redis `1:M 31 Jan 2024 10:00:00.123`,
# syslog `Jan 31 10:00:00`.
_STAMP = compile_signature(
    r"^\[?(\d{4}[/-]\d\d[/-]\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d| (?:UTC|GMT|CES?T|EES?T|[ECMP][SD]T|JST|IST)\b)?"
    r"|\d+:[A-Z] \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d(?:\.\d+)?"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)",
    capture=True,
)


def timestamp(line: str) -> str | None:
    """The timestamp text a line starts with, if it has one the catalog's software prints."""
    m = _STAMP.search(line[:80])
    return m.group(1) if m else None


@dataclass(frozen=True)
class Rule:
    """One lab's signature, compiled."""

    lab: str
    signature: LogSignature
    rx: Any

    def applies_to(self, path: str) -> bool:
        globs = self.signature.files
        if not globs:
            return True
        name = posixpath.basename(path)
        return any(fnmatch.fnmatchcase(path if "/" in g else name, g) for g in globs)


def rules_of(catalog: Catalog, labs: Iterable[str] | None = None) -> list[Rule]:
    """The signatures for a log of `labs`' nodes (every lab's when None): those labs' own,
    and every lab's `scope: any` ones (replies its clients print), in catalog order."""
    mine = set(catalog.labs) if labs is None else set(labs)
    return [
        Rule(name, sig, compile_signature(sig.pattern))
        for name in sorted(catalog.labs)
        for sig in catalog.labs[name].definition.signatures
        if name in mine or sig.scope == "any"
    ]


@dataclass
class _Tally:
    rule: Rule
    count: int = 0
    line: int = 0
    stamp: str | None = None
    sample: str = ""


@dataclass
class Scan:
    """What one log showed: findings in the order first seen, and how many lines were read."""

    findings: list[Finding] = field(default_factory=list)
    lines: int = 0


def scan(
    lines: Iterable[str],
    rules: list[Rule],
    *,
    source: str,
    node: str | None = None,
    redact: Callable[[str], str] = lambda s: s,
) -> Scan:
    """Every rule's matches in `lines`: one finding per signature (count, first line, its
    timestamp and the line itself, redacted)."""
    out = Scan()
    if not rules:
        out.lines = sum(1 for _ in lines)
        return out
    anyone = compile_signature("|".join(f"(?:{r.signature.pattern})" for r in rules))
    tallies: dict[int, _Tally] = {}
    n = 0
    for n, raw in enumerate(lines, start=1):
        # without its line end: RE2's `$` matches at the very end only, so a signature ending
        # in `$` matches a file's lines as it matches a run's own (split) output
        line = raw.rstrip("\r\n")
        if not anyone.search(line):
            continue
        for i, rule in enumerate(rules):
            if rule.rx.search(line):
                t = tallies.setdefault(i, _Tally(rule))
                if not t.count:
                    t.line, t.stamp = n, timestamp(line)
                    t.sample = redact(line[:SAMPLE_MAX])
                t.count += 1
    out.lines = n
    out.findings = [_finding(t, source, node) for t in tallies.values()]
    return out


def _finding(t: _Tally, source: str, node: str | None) -> Finding:
    sig = t.rule.signature
    return Finding(
        signature=f"log:{sig.id}",
        kind="log",
        severity=sig.severity,
        title=sig.title,
        count=t.count,
        source=source,
        first_line=t.line,
        first_time=t.stamp,
        node=node,
        lab=t.rule.lab,
        hint=sig.hint,
        sample=t.sample,
    )
