"""Known problems (known-problems/<id>.yaml) and how well a piece of evidence matches each.

A known problem is what an experienced engineer recognises: a set of finding signatures (as
`lab analyze` names them: `tls.alert:protocol_version`, `log:nginx.ca-md-too-weak`...) that
together identify it, with its title, fix and link. `lab triage` ranks them against the
signatures the evidence shows. Pure: reads files, never touches an engine or the network.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UsageError

FOLDER = "known-problems"


class KnownProblemDef(BaseModel):
    """One file of the catalog. `signatures` are fnmatch patterns over finding signatures
    (`http.status:5*`); the more of them the evidence shows, the higher the problem ranks."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    signatures: list[str] = Field(min_length=1)
    description: str | None = None
    fix: str | None = None
    link: str | None = None
    cases: list[str] = Field(default_factory=list)  # the scenarios that reproduce it


@dataclass(frozen=True)
class KnownProblem:
    id: str
    source: str  # the file it came from, or `escalation SUP-1 (run R)`
    definition: KnownProblemDef
    from_escalation: bool = False  # learnt from a ticket, not written into the catalog


@dataclass(frozen=True)
class Seen:
    """A signature the evidence shows, and where first (`captures/dmz.pcap frame 4`)."""

    signature: str
    where: str
    count: int = 1


@dataclass(frozen=True)
class Match:
    """A known problem against the evidence: which of its signatures were seen, and where."""

    problem: KnownProblem
    matched: list[tuple[str, Seen]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        total = len(self.matched) + len(self.missing)
        return len(self.matched) / total if total else 0.0

    def why(self) -> list[str]:
        lines = [
            f"seen {pattern}{'' if s.signature == pattern else ' as ' + s.signature}"
            f" x{s.count} ({s.where})"
            for pattern, s in self.matched
        ]
        lines += [f"not seen {pattern}" for pattern in self.missing]
        return lines


def _located(path: Path, exc: ValidationError) -> UsageError:
    lines = [
        f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
        for err in exc.errors()
    ]
    return UsageError("\n".join(lines), hint="docs/triage.md describes a known problem's file")


def _read(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{path}{where}: not YAML: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def load_known_problems(root: Path) -> list[KnownProblem]:
    """Every known-problems/*.yaml under the project root, by file name (its id)."""
    out: list[KnownProblem] = []
    for f in sorted((root / FOLDER).glob("*.yaml")):
        try:
            d = KnownProblemDef.model_validate(_read(f))
        except ValidationError as exc:
            raise _located(f, exc) from None
        out.append(KnownProblem(f.stem, str(f.relative_to(root)), d))
    return out


def match(problem: KnownProblem, seen: Iterable[Seen]) -> Match:
    seen = list(seen)
    matched: list[tuple[str, Seen]] = []
    missing: list[str] = []
    for pattern in problem.definition.signatures:
        hits = [s for s in seen if fnmatch.fnmatchcase(s.signature, pattern)]
        if hits:
            matched.append((pattern, max(hits, key=lambda s: s.count)))
        else:
            missing.append(pattern)
    return Match(problem, matched, missing)


def rank(problems: Iterable[KnownProblem], seen: Iterable[Seen]) -> list[Match]:
    """The problems with at least one signature seen, best first: the larger share of a
    problem's signatures seen, then the more of them, then one that says its fix, then the
    catalog's before a ticket's, then by id (a stable order)."""
    seen = list(seen)
    found = [m for m in (match(p, seen) for p in problems) if m.matched]
    return sorted(
        found,
        key=lambda m: (
            -m.score,
            -len(m.matched),
            m.problem.definition.fix is None,
            m.problem.from_escalation,
            m.problem.id,
        ),
    )
