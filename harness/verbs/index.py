"""`lab index [--store URL]`: the results store rebuilt from the report folders on disk and the
escalation ledger. Idempotent: every row is keyed on its kind and id, and a row whose folder
is gone is removed."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from harness.run.folder import reports_root
from harness.store.record import rebuild
from harness.verbs.escalate import read_ledger
from harness.verbs.results import IndexResult


def index(*, root: Path, store: str | None = None) -> IndexResult:
    return IndexResult.model_validate(
        asdict(rebuild(reports_root(root), read_ledger(root), given=store))
    )


def render_lines(r: IndexResult) -> list[str]:
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.by_kind.items())) or "nothing"
    lines = [f"indexed {r.indexed} results from {r.reports} into {r.store}: {kinds}"]
    if r.removed:
        lines.append(f"removed {r.removed} whose folders are gone")
    lines += [f"skipped (unreadable): {s}" for s in r.skipped]
    return lines
