"""`lab escalations [--ticket T]`: what was attached where.

From the local index the trackers keep (<escalations>/index.json: every file that reached a
ticket, on any tracker, with where it went) and the ledger `lab escalate` keeps beside it
(<escalations>/ledger.json: per escalation the run, its verdict, the bundle, and what a tracker
that was down did not get; for a verification its id, the verdict on the fix and both sides).
"""

from __future__ import annotations

from pathlib import Path

from harness.verbs.escalate import escalations_root, ledger_path, read_ledger
from harness.verbs.results import EscalationsResult


def escalations(*, root: Path, ticket: str | None = None) -> EscalationsResult:
    """The attachments index entries (ticket, tracker, file, sha256, size, when, where,
    comment) and the ledger entries (at, ticket, run, scenario, verdict, rate, bundle, sha256,
    note, trackers), oldest first."""
    from harness.trackers.local import read_index

    folder = escalations_root(root)
    attachments = [e for e in read_index(folder) if e.get("file")]
    entries = read_ledger(root)
    if ticket is not None:
        attachments = [e for e in attachments if e.get("ticket") == ticket]
        entries = [e for e in entries if e.get("ticket") == ticket]
    return EscalationsResult(
        folder=str(folder),
        ledger=str(ledger_path(root)),
        ticket=ticket,
        attachments=attachments,
        escalations=entries,
    )


def render_lines(r: EscalationsResult) -> list[str]:
    if not r.attachments and not r.escalations:
        which = f" for {r.ticket}" if r.ticket else ""
        return [f"no escalations{which} in {r.folder}"]
    tickets = list(
        dict.fromkeys(
            [str(e.get("ticket")) for e in r.escalations]
            + [str(a.get("ticket")) for a in r.attachments]
        )
    )
    lines: list[str] = []
    for t in tickets:
        lines.append(t)
        for e in (e for e in r.escalations if e.get("ticket") == t):
            what = "verification" if e.get("verification") else "run"
            lines.append(
                f"  {e.get('at')}  {e.get('scenario')} {what} {e.get('run')}  "
                f"{e.get('verdict')} ({e.get('rate') or '-'})  {e.get('bundle')}"
            )
            for tr in e.get("trackers") or []:
                if tr.get("error"):
                    lines.append(
                        f"    {tr.get('tracker')}: NOT attached "
                        f"{', '.join(tr.get('not_attached') or [])} ({tr['error']})"
                    )
        for a in (a for a in r.attachments if a.get("ticket") == t):
            lines.append(
                f"  {a.get('tracker'):<8} {a.get('file')}  {a.get('when')}  {a.get('where') or ''}"
            )
    return lines
