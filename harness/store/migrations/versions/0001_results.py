"""the results table

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "results",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("scenario", sa.String(200)),
        sa.Column("cell", sa.String(400)),
        sa.Column("role", sa.String(32)),
        sa.Column("verdict", sa.String(32)),
        sa.Column("observed", sa.Integer),
        sa.Column("attempts", sa.Integer),
        sa.Column("rate", sa.String(32)),
        sa.Column("ticket", sa.String(128)),
        sa.Column("release", sa.String(128)),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("engine", sa.String(400)),
        sa.Column("parent", sa.String(200)),
        sa.Column("started", sa.String(40)),
        sa.Column("ended", sa.String(40)),
        sa.Column("duration_s", sa.Float),
        sa.Column("folder", sa.String(1000)),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("indexed_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="results_pk"),
    )
    for col in ("scenario", "verdict", "ticket", "parent", "started"):
        op.create_index(f"ix_results_{col}", "results", [col])


def downgrade() -> None:
    op.drop_table("results")
