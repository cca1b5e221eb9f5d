"""Label attributes: a nullable JSON column of scalars beyond the class (an OCR box's transcript, …).

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


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch:  # SQLite drops columns only by rebuilding the table
        batch.drop_column("attributes")
