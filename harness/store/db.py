"""The results store over SQLAlchemy: open (migrating a writable store to Alembic's head),
upsert rows, drop rows whose folders are gone, read rows back.

Concurrent writers are safe: every write is one `INSERT ... ON CONFLICT DO UPDATE` keyed on
(kind, id), SQLite runs in WAL mode with a busy timeout, and the migration itself runs under a
lock (a file lock beside the SQLite file, an advisory lock on PostgreSQL), so two machines
finishing at once both land. A read-only store (`lab serve`) never migrates or writes."""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, select, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from harness.errors import InfraError, UsageError
from harness.store.entry import ResultEntry
from harness.store.location import shown
from harness.store.tables import COLUMNS, results

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0001"  # the newest revision under migrations/versions
_LOCK_KEY = 0x4C4142  # PostgreSQL advisory lock id for the migration ("LAB")


class Store:
    """One open store. `readonly`: SQLite opened mode=ro, PostgreSQL sessions read-only."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.shown = shown(url)
        self.readonly = readonly
        self.engine = _engine(url, readonly=readonly)

    @classmethod
    def open(cls, url: str, *, readonly: bool = False) -> Store:
        """Open and, when writable, bring the schema to HEAD. Unreachable: InfraError (exit 3)."""
        store = cls(url, readonly=readonly)
        try:
            if readonly:
                store.check()
            else:
                store.migrate()
        except SQLAlchemyError as exc:
            store.close()
            raise InfraError(
                f"results store {store.shown}: {_reason(exc)}",
                hint="check the URL (--store, $LABHARNESS_STORE or results_store in the local "
                "configuration) and that the database answers",
            ) from None
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def check(self) -> None:
        """A read-only store must already hold the table (`lab index` makes it)."""
        with self.engine.connect() as conn:
            version = _revision(conn)
        if version is None:
            raise UsageError(
                f"results store {self.shown} has no index yet",
                hint="run `lab index` to build it from the report folders",
            )

    def migrate(self) -> None:
        with self._migration_lock(), self.engine.begin() as conn:
            if _revision(conn) == HEAD:
                return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_sqlite:
            db = self.engine.url.database or ""
            if not db or db == ":memory:":
                yield
                return
            with Path(f"{db}.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()

    def upsert(self, entries: Iterable[ResultEntry]) -> int:
        rows = [_row(e) for e in entries]
        if not rows:
            return 0
        stmt = _insert(self.engine)(results)
        keep = {c: stmt.excluded[c] for c in (*COLUMNS, "indexed_at") if c not in ("kind", "id")}
        stmt = stmt.on_conflict_do_update(index_elements=["kind", "id"], set_=keep)
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)
        return len(rows)

    def prune(self, present: set[tuple[str, str]]) -> int:
        """Remove every row not in `present` (what `lab index` found on disk)."""
        with self.engine.begin() as conn:
            keys = [(r.kind, r.id) for r in conn.execute(select(results.c.kind, results.c.id))]
            gone = [k for k in keys if k not in present]
            for kind, rid in gone:
                conn.execute(delete(results).where(results.c.kind == kind, results.c.id == rid))
        return len(gone)

    def entries(self, kind: str | None = None) -> list[ResultEntry]:
        query = select(*[results.c[c] for c in COLUMNS]).order_by(results.c.started)
        if kind is not None:
            query = query.where(results.c.kind == kind)
        with self.engine.connect() as conn:
            return [ResultEntry.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def close(self) -> None:
        self.engine.dispose()


def _engine(url: str, *, readonly: bool) -> Engine:
    try:
        if url.startswith("sqlite"):
            return _sqlite(url, readonly=readonly)
        args: dict[str, Any] = {"connect_timeout": 10}
        if readonly:
            args["options"] = "-c default_transaction_read_only=on"
        return create_engine(url, connect_args=args, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise UsageError(
            f"results store {shown(url)}: not a store URL ({exc})",
            hint="give sqlite:///path/index.sqlite, a file path, or postgresql://user@host/db",
        ) from None


def _sqlite(url: str, *, readonly: bool) -> Engine:
    from sqlalchemy.engine import make_url

    path = make_url(url).database or ""
    if readonly:
        if not Path(path).is_file():
            raise UsageError(
                f"results store {path} does not exist",
                hint="run `lab index` to build it from the report folders",
            )
        # no pool: a read-only reader (lab serve) opens the file per request, so a store
        # replaced on disk is read afresh rather than through a connection to the old file
        engine = create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true",
            connect_args={"timeout": 30},
            poolclass=NullPool,
        )
    else:
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi: Any, _record: Any) -> None:
        cur = dbapi.cursor()
        if not readonly:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def _insert(engine: Engine) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT DO UPDATE."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def _revision(conn: Any) -> str | None:
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _row(e: ResultEntry) -> dict[str, Any]:
    return {**e.model_dump(mode="json"), "indexed_at": datetime.now(UTC).isoformat()}


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own words, first line, never the URL (it may hold the password)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return first[:300]
