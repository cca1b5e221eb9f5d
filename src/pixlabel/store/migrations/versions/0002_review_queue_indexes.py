"""Indexes for the review queue: class labels by (confidence, id), also after status and after source, so a
queue page, filtered or not, is an index range scan, and its progress counts read only indexes.

Revision ID: 0002
Revises: 0001
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Class labels only (no box, no mask): the queue shows one label per image.
CLASS_LABEL_WHERE = "x1 IS NULL AND mask IS NULL"


def upgrade() -> None:
    for name, columns in (("confidence", []), ("status", ["status"]), ("source", ["source"])):
        op.create_index(f"ix_labels_{name}", "labels", [*columns, "confidence", "id"],
                        sqlite_where=sa.text(CLASS_LABEL_WHERE), postgresql_where=sa.text(CLASS_LABEL_WHERE))


def downgrade() -> None:
    for name in ("ix_labels_source", "ix_labels_status", "ix_labels_confidence"):
        op.drop_index(name, table_name="labels")
