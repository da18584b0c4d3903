"""Escalations per ticket: when each one was made, of which run or verification, the bundle and
its digest, and per tracker what was attached, what was there already and what was not."""

from __future__ import annotations

from typing import Any

from harness.store.entry import ResultEntry
from harness.web.models import Attachment, EscalationRow, EscalationsPage, TicketEscalations
from harness.web.queries import Reader
from harness.web.views import items, mapping, run_url, text, verification_url

NO_TICKET = "(no ticket)"


def _names(raw: Any) -> list[str]:
    return [t for t in (text(x) for x in items(raw)) if t]


def _attachment(raw: Any) -> Attachment | None:
    t = mapping(raw)
    name = text(t.get("tracker"))
    if not name:
        return None
    return Attachment(
        tracker=name,
        attached=_names(t.get("attached")),
        already=_names(t.get("already")),
        not_attached=_names(t.get("not_attached")),
        url=text(t.get("url")),
        error=text(t.get("error")),
    )


def escalation_row(e: ResultEntry, indexed: dict[str, str]) -> EscalationRow:
    d = e.detail
    what = text(d.get("what"))
    subject = text(d.get("run"))
    kind = indexed.get(subject or "")
    url = None
    if subject and kind == "verification":
        url = verification_url(subject)
    elif subject and kind == "run":
        url = run_url(subject)
    return EscalationRow(
        id=e.id,
        ticket=e.ticket,
        scenario=e.scenario,
        verdict=e.verdict,
        rate=e.rate,
        started=e.started,
        what=what,
        subject=subject,
        url=url,
        bundle=text(d.get("bundle")),
        sha256=text(d.get("sha256")),
        trackers=[a for a in (_attachment(t) for t in items(d.get("trackers"))) if a],
    )


def escalations_page(reader: Reader, ticket: str | None = None) -> EscalationsPage:
    found = [e for e in reader.of_kind("escalation") if ticket is None or e.ticket == ticket]
    indexed = reader.kinds_of([text(e.detail.get("run")) or "" for e in found])
    by: dict[str, list[EscalationRow]] = {}
    for e in reversed(found):  # newest first
        by.setdefault(e.ticket or NO_TICKET, []).append(escalation_row(e, indexed))
    return EscalationsPage(
        tickets=[TicketEscalations(ticket=t, escalations=rows) for t, rows in sorted(by.items())]
    )
