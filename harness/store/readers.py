"""Each kind of result folder read into store rows: what `lab index` walks and what a verb
indexes as it finishes (the same reader, so the live index and a rebuilt one agree).

A folder's own file says what it is: journal.json (a run), verification.json, results.json
(a matrix, or a gate under gates/), bisect.json, replay.json; escalations come from the
escalation ledger. A file that cannot be read is skipped and named, never fatal: one broken
folder must not hide the other thousand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import journal_model
from harness.store.entry import ResultEntry

MARKERS = ("journal.json", "verification.json", "results.json", "bisect.json", "replay.json")
_TRACKER_KEYS = ("tracker", "attached", "already", "not_attached", "url", "error")
MAX_FILE = 64 * 1024 * 1024  # a results file bigger than this is not one of ours


@dataclass
class Read:
    """What a walk found: the rows, and the files it could not read (path: why)."""

    entries: list[ResultEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def duration(started: str | None, ended: str | None) -> float | None:
    try:
        if started and ended:
            delta = datetime.fromisoformat(ended) - datetime.fromisoformat(started)
            return round(delta.total_seconds(), 3)
    except ValueError:
        return None
    return None


def rel(path: Path | str, reports: Path) -> str:
    """A folder relative to the reports root, or as given when it lies outside it."""
    p = Path(path)
    try:
        return p.resolve().relative_to(reports.resolve()).as_posix()
    except (ValueError, OSError):
        return str(p)


def _json(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_FILE:
        raise ValueError(f"bigger than {MAX_FILE} bytes")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def read_run(folder: Path, reports: Path) -> ResultEntry | None:
    """A run's row from its journal.json; None when the journal names no run."""
    j = journal_model.load(folder / "journal.json")
    if not j.run:
        return None
    rep = j.reproduction or journal_model.Reproduction()
    versions = {
        n.name: " ".join(x for x in (n.lab, n.version, f"on {n.os}" if n.os else None) if x)
        for n in j.topology.nodes
    }
    role = j.role or ("up" if j.verb == "up" else None)
    rid, parent = j.run, j.verification
    if j.live and j.live.get("rerun"):  # a rerun on a live lab: live/<n>/ under the lab's folder
        rid, parent = f"{j.run}/live/{j.live['rerun']}", parent or j.run
    detail: dict[str, Any] = {
        "title": j.title,
        "fix": j.fix,
        "source": j.source,
        "cell": j.matrix_cell or {},
        "checks_green": all(c.passed is not False for c in j.checks),
    }
    if rep.interval is not None:
        detail["interval"] = rep.interval.model_dump(mode="json")
    return ResultEntry(
        kind="run",
        id=rid,
        scenario=j.scenario,
        cell=j.cell,
        role=role,
        verdict=rep.verdict or j.result,
        observed=rep.observed,
        attempts=rep.attempts,
        rate=rep.rate,
        ticket=j.case.ticket,
        versions=versions,
        engine=j.engine,
        parent=parent,
        started=j.started,
        ended=j.ended,
        duration_s=duration(j.started, j.ended),
        folder=rel(folder, reports),
        detail=detail,
    )


def _side(side: dict[str, Any], folder: Path, reports: Path) -> dict[str, Any]:
    where = side.get("folder") or ""
    return {
        "run": side.get("run"),
        "verdict": side.get("verdict"),
        "rate": side.get("rate"),
        "checks_green": side.get("checks_green"),
        "folder": rel(folder / where, reports) if where else None,
    }


def read_verification(folder: Path, reports: Path) -> ResultEntry:
    d = _json(folder / "verification.json")
    case = d.get("case") or {}
    base, cand = d.get("baseline") or {}, d.get("candidate") or {}
    return ResultEntry(
        kind="verification",
        id=str(d["id"]),
        scenario=d.get("scenario"),
        role="verify-fix",
        verdict=d.get("verdict"),
        rate=f"{base.get('rate')} -> {cand.get('rate')}",
        ticket=case.get("ticket"),
        started=d.get("started"),
        ended=d.get("ended"),
        duration_s=duration(d.get("started"), d.get("ended")),
        folder=rel(folder, reports),
        detail={
            "title": d.get("title"),
            "fix": (d.get("overlay") or {}).get("fix"),
            "reason": d.get("reason"),
            "baseline": _side(base, folder, reports),
            "candidate": _side(cand, folder, reports),
        },
    )


def _cell(c: dict[str, Any], folder: Path, reports: Path) -> dict[str, Any]:
    where = c.get("folder")
    return {
        "label": c.get("label"),
        "cell": c.get("cell") or {},
        "status": c.get("status"),
        "verdict": c.get("verdict"),
        "rate": c.get("rate"),
        "run": c.get("run"),
        "folder": rel(folder / where, reports) if where else None,
    }


def read_matrix(folder: Path, reports: Path) -> ResultEntry:
    from harness import outcomes

    d = _json(folder / "results.json")
    summary = {str(k): int(v) for k, v in (d.get("summary") or {}).items()}
    failed = any(summary.get(s) for s in (outcomes.FAIL, outcomes.ERROR))
    return ResultEntry(
        kind="matrix",
        id=str(d["matrix"]),
        scenario=d.get("scenario"),
        verdict=outcomes.FAIL if failed else outcomes.PASS,
        engine=d.get("engine") or ", ".join(d.get("engines") or []) or None,
        started=d.get("started"),
        ended=d.get("ended"),
        duration_s=d.get("seconds"),
        folder=rel(folder, reports),
        detail={
            "axes": d.get("axes") or {},
            "summary": summary,
            "interrupted": bool(d.get("interrupted")),
            "cells": [_cell(c, folder, reports) for c in d.get("cells") or []],
        },
    )


def _keyed(diff: Any) -> list[dict[str, Any]]:
    """A gate's comparison rows, each with its cell key under `key` as well as `cell`."""
    return [{"key": x.get("cell"), **x} for x in diff or [] if isinstance(x, dict)]


def read_gate(folder: Path, reports: Path) -> ResultEntry:
    d = _json(folder / "results.json")
    cells = [
        {k: c.get(k) for k in ("key", "status", "verdict", "run")}
        | {"folder": rel(folder / c["folder"], reports) if c.get("folder") else None}
        for c in d.get("cells") or []
    ]
    return ResultEntry(
        kind="gate",
        id=folder.name,
        scenario=d.get("gate"),
        verdict=d.get("verdict"),
        release=d.get("release"),
        started=d.get("ended"),
        ended=d.get("ended"),
        folder=rel(folder, reports),
        detail={
            "reason": d.get("reason"),
            "baseline": d.get("baseline"),
            "cells": cells,
            **{k: _keyed(d.get(k)) for k in ("regressions", "fixed", "new", "removed")},
            "errors": d.get("errors") or [],
        },
    )


def read_bisect(folder: Path, reports: Path) -> ResultEntry:
    d = _json(folder / "bisect.json")
    probes = [
        {k: p.get(k) for k in ("value", "verdict", "rate", "run")}
        | {"folder": rel(p["folder"], reports) if p.get("folder") else None}
        for p in d.get("probes") or []
    ]
    keys = ("axis", "values", "looking_for", "first_bad", "last_good", "first_fixed")
    return ResultEntry(
        kind="bisect",
        id=str(d.get("id") or folder.name),
        scenario=d.get("scenario"),
        verdict=d.get("verdict"),
        started=d.get("started"),
        ended=d.get("ended"),
        duration_s=duration(d.get("started"), d.get("ended")),
        folder=rel(folder, reports),
        detail={**{k: d.get(k) for k in keys}, "reason": d.get("reason"), "probes": probes},
    )


def read_replay(folder: Path, reports: Path) -> ResultEntry:
    d = _json(folder / "replay.json")
    replay = d.get("replay") or {}
    original = d.get("original") or {}
    return ResultEntry(
        kind="replay",
        id=str(d.get("id") or folder.name),
        scenario=d.get("scenario"),
        verdict=d.get("verdict"),
        rate=replay.get("rate"),
        parent=original.get("run"),
        started=d.get("started"),
        ended=d.get("ended"),
        duration_s=duration(d.get("started"), d.get("ended")),
        folder=rel(folder, reports),
        detail={
            "bundle": d.get("bundle"),
            "sha256": d.get("sha256"),
            "fix": d.get("fix"),
            "original": {k: original.get(k) for k in ("run", "verdict", "rate", "engine")},
            "run": replay.get("run"),
            "run_folder": rel(replay["folder"], reports) if replay.get("folder") else None,
        },
    )


def escalation_rows(ledger: list[dict[str, Any]], reports: Path) -> list[ResultEntry]:
    """One row per ledger entry; its id is when and where it went (unique per escalation)."""
    rows = []
    for e in ledger:
        at, ticket, run = str(e.get("at") or ""), str(e.get("ticket") or ""), e.get("run")
        trackers = [
            {
                k: t.get(k)
                for k in ("tracker", "attached", "already", "not_attached", "url", "error")
            }
            for t in e.get("trackers") or []
            if isinstance(t, dict)
        ]
        rows.append(
            ResultEntry(
                kind="escalation",
                id=f"{ticket}@{at}@{run}@{e.get('sha256', '')[:12]}",
                scenario=e.get("scenario"),
                verdict=e.get("verdict"),
                rate=e.get("rate"),
                ticket=ticket or None,
                parent=run,
                started=at or None,
                ended=at or None,
                folder=rel(e["folder"], reports) if e.get("folder") else None,
                detail={
                    "run": run,
                    "what": "verification" if e.get("verification") else "run",
                    "bundle": e.get("bundle"),
                    "sha256": e.get("sha256"),
                    "note": e.get("note"),
                    "trackers": trackers,
                },
            )
        )
    return rows


def read_folder(folder: Path, reports: Path) -> list[ResultEntry]:
    """The rows one result folder holds (a matrix's also re-reads its cells' runs, so each run
    names the matrix it was a cell of). Raises OSError/ValueError/KeyError when unreadable."""
    if (folder / "journal.json").is_file():
        run = read_run(folder, reports)
        return [run] if run else []
    if (folder / "verification.json").is_file():
        return [read_verification(folder, reports)]
    if (folder / "bisect.json").is_file():
        return [read_bisect(folder, reports)]
    if (folder / "replay.json").is_file():
        return [read_replay(folder, reports)]
    if (folder / "results.json").is_file():
        if "matrix" in _json(folder / "results.json"):
            matrix = read_matrix(folder, reports)
            return [matrix, *_cell_runs(matrix, reports)]
        return [read_gate(folder, reports)]
    return []


def _cell_runs(matrix: ResultEntry, reports: Path) -> list[ResultEntry]:
    runs = []
    for c in matrix.detail.get("cells") or []:
        where = c.get("folder")
        if not where or not (reports / where / "journal.json").is_file():
            continue
        run = read_run(reports / where, reports)
        if run is not None:
            runs.append(run.model_copy(update={"parent": matrix.id}))
    return runs


def result_folders(reports: Path) -> Iterator[Path]:
    """Every folder under the reports root holding a result file, not following symlinks and
    not descending into a run's own artifacts."""
    for here, dirs, files in os.walk(reports, followlinks=False):
        if any(m in files for m in MARKERS):
            dirs[:] = []  # a result folder holds no other result folders but its live reruns
            yield Path(here)
            live = Path(here) / "live"
            if "journal.json" in files and live.is_dir() and not live.is_symlink():
                yield from sorted(
                    p for p in live.iterdir() if p.name.isdigit() and not p.is_symlink()
                )
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))


def read_tree(reports: Path) -> Read:
    """Every result under the reports root; a matrix's parent link wins over a bare run row."""
    found = Read()
    by_key: dict[tuple[str, str], ResultEntry] = {}
    for folder in result_folders(reports):
        try:
            rows = read_folder(folder, reports)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            found.skipped.append(f"{folder}: {type(exc).__name__}: {exc}"[:400])
            continue
        for r in rows:
            old = by_key.get((r.kind, r.id))
            if old is None or (r.parent and not old.parent):
                by_key[(r.kind, r.id)] = r
    found.entries = list(by_key.values())
    return found
