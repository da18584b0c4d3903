"""Index a result as its verb finishes, and rebuild the whole index from the folders.

The hook never fails the verb: the result is on disk whatever happens here, and `lab index`
puts it in later. It says so on stderr (through logging) with the store named without its
password."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store.entry import ResultEntry
from harness.store.location import shown, store_url
from harness.store.readers import escalation_rows, read_folder, read_tree

log = logging.getLogger(__name__)


def prewarm() -> None:
    """Import the store's libraries on a daemon thread while a run is busy with the engine:
    SQLAlchemy and its SQLite dialect cost about 0.2 s, which the run's end then does not pay."""
    import threading

    def load() -> None:
        try:
            from sqlalchemy.dialects import postgresql, sqlite  # noqa: F401

            import harness.store.db  # noqa: F401
        except Exception:  # the run's end imports them again and says what failed
            pass

    threading.Thread(target=load, name="store-prewarm", daemon=True).start()


def index_rows(reports: Path, rows: list[ResultEntry], *, given: str | None = None) -> bool:
    """Upsert rows; False (and a warning) when the store cannot take them."""
    from sqlalchemy.exc import SQLAlchemyError

    from harness.store.db import Store

    if not rows:
        return True
    url = store_url(reports, given)
    try:
        store = Store.open(url)
        try:
            store.upsert(rows)
        finally:
            store.close()
    except (HarnessError, SQLAlchemyError, OSError) as exc:
        log.warning(
            "results store %s: not indexed (%s); `lab index` will add it",
            shown(url),
            getattr(exc, "message", None) or type(exc).__name__,
        )
        return False
    return True


def index_folder(reports: Path, folder: Path | str) -> bool:
    """Index the result in `folder` (a run, verification, matrix, gate, bisect or replay)."""
    try:
        rows = read_folder(Path(folder), reports)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: not indexed: %s", folder, exc)
        return False
    return index_rows(reports, rows)


def index_escalations(reports: Path, ledger: list[dict[str, Any]]) -> bool:
    return index_rows(reports, escalation_rows(ledger, reports))


@dataclass
class Rebuilt:
    """What `lab index` did."""

    store: str
    reports: str
    indexed: int = 0
    removed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def rebuild(reports: Path, ledger: list[dict[str, Any]], *, given: str | None = None) -> Rebuilt:
    """Every result folder under `reports` and every escalation, upserted; rows whose folder
    is gone are removed. Rerunning it changes nothing."""
    from harness.store.db import Store

    found = read_tree(reports) if reports.is_dir() else None
    rows = [*(found.entries if found else []), *escalation_rows(ledger, reports)]
    url = store_url(reports, given)
    store = Store.open(url)
    try:
        n = store.upsert(rows)
        removed = store.prune({(r.kind, r.id) for r in rows})
    finally:
        store.close()
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    return Rebuilt(
        store=shown(url),
        reports=str(reports),
        indexed=n,
        removed=removed,
        by_kind=kinds,
        skipped=found.skipped if found else [],
    )
