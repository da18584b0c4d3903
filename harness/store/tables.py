"""The store's one table, in SQLAlchemy Core: the same on SQLite and PostgreSQL. Its history is
under migrations/ (Alembic); a change here is a new revision there."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Integer, MetaData, PrimaryKeyConstraint, String, Table

metadata = MetaData()

results = Table(
    "results",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("id", String(200), nullable=False),
    Column("scenario", String(200), index=True),
    Column("cell", String(400)),
    Column("role", String(32)),
    Column("verdict", String(32), index=True),
    Column("observed", Integer),
    Column("attempts", Integer),
    Column("rate", String(32)),
    Column("ticket", String(128), index=True),
    Column("release", String(128)),
    Column("versions", JSON, nullable=False),
    Column("engine", String(400)),
    Column("parent", String(200), index=True),
    Column("started", String(40), index=True),
    Column("ended", String(40)),
    Column("duration_s", Float),
    Column("folder", String(1000)),
    Column("detail", JSON, nullable=False),
    Column("indexed_at", String(40), nullable=False),
    PrimaryKeyConstraint("kind", "id", name="results_pk"),
)

COLUMNS: tuple[str, ...] = tuple(c.name for c in results.columns if c.name != "indexed_at")
