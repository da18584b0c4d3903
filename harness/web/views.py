"""The runs list, one run, the verifications and one verification side by side: index rows
shaped into the page models. A row's `detail` is plain JSON written by another version of the
harness, so every key is read as optional and of the type expected, or left out."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from harness.confidence import wilson
from harness.store.entry import ResultEntry
from harness.web.files import ReportFiles
from harness.web.models import (
    RunFilter,
    RunPage,
    RunRow,
    RunsPage,
    Side,
    VerificationPage,
    VerificationRow,
    VerificationsPage,
)
from harness.web.queries import Reader


def text(value: Any) -> str | None:
    """A detail value as text: strings and numbers, nothing else."""
    if isinstance(value, bool):
        return None
    return str(value) if isinstance(value, str | int | float) else None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def run_url(rid: str) -> str:
    return "/runs/" + quote(rid, safe="")


def verification_url(vid: str) -> str:
    return "/verifications/" + quote(vid, safe="")


def matrix_url(scenario: str | None, mid: str | None = None) -> str:
    base = "/matrices/" + quote(scenario or "", safe="")
    return base + ("?matrix=" + quote(mid, safe="") if mid else "")


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """`3/5` -> (3, 5); anything else None."""
    if not rate or rate.count("/") != 1:
        return None
    k, _, n = rate.partition("/")
    if not (k.strip().isdigit() and n.strip().isdigit()):
        return None
    kk, nn = int(k), int(n)
    return (kk, nn) if 0 <= kk <= nn else None


def interval_text(observed: int | None, attempts: int | None, rate: str | None) -> str | None:
    """The Wilson 95% interval of k/n (harness.confidence), as reports print it."""
    kn = (observed, attempts) if observed is not None and attempts else parse_rate(rate)
    if kn is None or kn[0] is None or not kn[1] or not 0 <= kn[0] <= kn[1]:
        return None
    return wilson(kn[0], kn[1]).text()


def _parent_url(e: ResultEntry, kind: str | None) -> str | None:
    if not e.parent or kind is None:
        return None
    if kind == "verification":
        return verification_url(e.parent)
    if kind == "matrix":
        return matrix_url(e.scenario, e.parent)
    return run_url(e.parent) if kind == "run" else None


def run_row(e: ResultEntry, kinds: dict[str, str]) -> RunRow:
    kind = kinds.get(e.parent) if e.parent else None
    return RunRow(
        id=e.id,
        scenario=e.scenario,
        title=text(e.detail.get("title")),
        role=e.role,
        cell=e.cell,
        fix=text(e.detail.get("fix")),
        verdict=e.verdict,
        rate=e.rate,
        interval=interval_text(e.observed, e.attempts, e.rate),
        ticket=e.ticket,
        started=e.started,
        duration_s=e.duration_s,
        parent=e.parent,
        parent_kind=kind,
        url=run_url(e.id),
        parent_url=_parent_url(e, kind),
    )


def runs_page(reader: Reader, f: RunFilter) -> RunsPage:
    rows, matched = reader.runs(f)
    kinds = reader.kinds_of([e.parent for e in rows if e.parent])
    return RunsPage(
        filters=f, runs=[run_row(e, kinds) for e in rows], matched=matched, choices=reader.choices()
    )


def run_page(reader: Reader, files: ReportFiles, rid: str) -> RunPage | None:
    e = reader.one("run", rid)
    if e is None:
        return None
    kinds = reader.kinds_of([e.parent] if e.parent else [])
    listed, truncated = files.listing(e.folder)
    return RunPage(
        run=run_row(e, kinds),
        versions=e.versions,
        engine=e.engine,
        ended=e.ended,
        source=text(e.detail.get("source")),
        checks_green=flag(e.detail.get("checks_green")),
        folder=e.folder,
        report_url=files.url(e.folder, "report.html"),
        files=listed,
        files_truncated=truncated,
    )


def verification_row(e: ResultEntry) -> VerificationRow:
    return VerificationRow(
        id=e.id,
        scenario=e.scenario,
        fix=text(e.detail.get("fix")),
        verdict=e.verdict,
        ticket=e.ticket,
        started=e.started,
        baseline_rate=text(mapping(e.detail.get("baseline")).get("rate")),
        candidate_rate=text(mapping(e.detail.get("candidate")).get("rate")),
        url=verification_url(e.id),
    )


def verifications_page(reader: Reader) -> VerificationsPage:
    found = reader.of_kind("verification")
    return VerificationsPage(verifications=[verification_row(e) for e in reversed(found)])


def _side(role: str, said: dict[str, Any], run: ResultEntry | None, files: ReportFiles) -> Side:
    """One side from the verification's own record, the side's indexed run winning."""
    rid = run.id if run is not None else text(said.get("run"))
    rate = run.rate if run is not None and run.rate else text(said.get("rate"))
    folder = run.folder if run is not None and run.folder else text(said.get("folder"))
    green = flag(run.detail.get("checks_green")) if run is not None else None
    return Side(
        role=role,
        run=rid,
        indexed=run is not None,
        verdict=(run.verdict if run is not None else None) or text(said.get("verdict")),
        rate=rate,
        interval=interval_text(run.observed if run else None, run.attempts if run else None, rate),
        checks_green=green if green is not None else flag(said.get("checks_green")),
        duration_s=run.duration_s if run is not None else None,
        versions=run.versions if run is not None else {},
        url=run_url(run.id) if run is not None else None,
        report_url=files.url(folder, "report.html"),
    )


def verification_page(reader: Reader, files: ReportFiles, vid: str) -> VerificationPage | None:
    e = reader.one("verification", vid)
    if e is None:
        return None
    said = {r: mapping(e.detail.get(r)) for r in ("baseline", "candidate")}
    by_id = reader.runs_by_id([text(s.get("run")) or "" for s in said.values()])
    by_role = {c.role: c for c in reader.children(vid) if c.role}
    sides = {
        r: _side(r, s, by_id.get(text(s.get("run")) or "") or by_role.get(r), files)
        for r, s in said.items()
    }
    return VerificationPage(
        verification=verification_row(e),
        reason=text(e.detail.get("reason")),
        report_url=files.url(e.folder, "report.html"),
        baseline=sides["baseline"],
        candidate=sides["candidate"],
    )
