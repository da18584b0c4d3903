"""The read side of the results store: SELECTs over `results`, rows back as ResultEntry. Only
SELECT is ever issued (the store is opened read-only too); a database that stops answering
raises SQLAlchemyError, which the application turns into its 503 page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Select, func, select

from harness.store.entry import ResultEntry
from harness.store.tables import COLUMNS, results
from harness.web.models import Choices, RunFilter

_STARTED = func.coalesce(results.c.started, "")
_RANK = {"verification": 0, "matrix": 1, "run": 2, "gate": 3, "bisect": 4, "replay": 5}


def _select() -> Select[Any]:
    return select(*[results.c[c] for c in COLUMNS])


class Reader:
    """Typed reads over one store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _all(self, query: Select[Any]) -> list[ResultEntry]:
        with self.engine.connect() as conn:
            return [ResultEntry.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def one(self, kind: str, rid: str) -> ResultEntry | None:
        found = self._all(_select().where(results.c.kind == kind, results.c.id == rid))
        return found[0] if found else None

    def of_kind(self, kind: str, *, scenario: str | None = None) -> list[ResultEntry]:
        """Every row of a kind, oldest first."""
        query = _select().where(results.c.kind == kind)
        if scenario is not None:
            query = query.where(results.c.scenario == scenario)
        return self._all(query.order_by(_STARTED, results.c.id))

    def runs(self, f: RunFilter) -> tuple[list[ResultEntry], int]:
        """(the newest `f.limit` runs matching the filters, how many match in all)."""
        where = [results.c.kind == "run"]
        for column, value in (("scenario", f.scenario), ("ticket", f.ticket)):
            if value:
                where.append(results.c[column] == value)
        if f.verdict:
            where.append(results.c.verdict == f.verdict)
        if f.date_from is not None:
            where.append(results.c.started >= f.date_from.isoformat())
        if f.date_to is not None:  # the whole day: before the next one starts
            where.append(results.c.started < (f.date_to + timedelta(days=1)).isoformat())
        query = _select().where(*where).order_by(_STARTED.desc(), results.c.id.desc())
        rows = self._all(query.limit(f.limit))
        with self.engine.connect() as conn:
            matched = conn.execute(select(func.count()).select_from(results).where(*where))
            total = int(matched.scalar_one())
        return rows, total

    def kinds_of(self, ids: Sequence[str]) -> dict[str, str]:
        """id -> kind for the parents of some runs (a verification, matrix, replay or run)."""
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        query = select(results.c.id, results.c.kind).where(
            results.c.id.in_(wanted), results.c.kind != "escalation"
        )
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):  # an id held by two kinds: the page-owning one wins
                rid, kind = str(r.id), str(r.kind)
                if _RANK.get(kind, 9) < _RANK.get(out.get(rid, ""), 9):
                    out[rid] = kind
        return out

    def runs_by_id(self, ids: Sequence[str]) -> dict[str, ResultEntry]:
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        query = _select().where(results.c.kind == "run", results.c.id.in_(wanted))
        return {e.id: e for e in self._all(query)}

    def children(self, parent: str) -> list[ResultEntry]:
        return self._all(
            _select().where(results.c.kind == "run", results.c.parent == parent).order_by(_STARTED)
        )

    def choices(self) -> Choices:
        def distinct(column: str) -> list[str]:
            col = results.c[column]
            query = select(col).where(results.c.kind == "run", col.is_not(None)).distinct()
            with self.engine.connect() as conn:
                return sorted(str(v) for (v,) in conn.execute(query))

        return Choices(
            scenarios=distinct("scenario"), tickets=distinct("ticket"), verdicts=distinct("verdict")
        )

    def counts(self) -> dict[str, int]:
        query = select(results.c.kind, func.count()).group_by(results.c.kind)
        with self.engine.connect() as conn:
            return {str(k): int(n) for k, n in conn.execute(query)}

    def folder_among(self, candidates: Sequence[str]) -> str | None:
        """The longest of `candidates` that some indexed result names as its folder."""
        if not candidates:
            return None
        query = select(results.c.folder).where(results.c.folder.in_(list(candidates))).distinct()
        with self.engine.connect() as conn:
            named = {str(v) for (v,) in conn.execute(query)}
        found = [c for c in candidates if c in named]
        return max(found, key=len) if found else None
