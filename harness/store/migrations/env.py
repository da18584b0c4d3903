"""Alembic's environment for the results store: always given a connection by
harness.store.db (the URL, with its password, never passes through alembic.ini)."""

from __future__ import annotations

from alembic import context

from harness.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
