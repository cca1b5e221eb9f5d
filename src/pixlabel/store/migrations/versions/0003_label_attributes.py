"""Attributes: nullable JSON columns of scalars on labels (an OCR box's transcript, …) and on images (size,
aspect, grey, sharpness, dominant colours from ``pixlabel ingest --properties``).

Revision ID: 0003
Revises: 0002
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added after 'mask' in the ORM but appended here: column order does not matter to SQL or the models.
    op.add_column("labels", sa.Column("attributes", sa.JSON(), nullable=True))
    op.add_column("images", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    for name in ("images", "labels"):
        with op.batch_alter_table(name) as batch:  # SQLite drops columns only by rebuilding the table
            batch.drop_column("attributes")
