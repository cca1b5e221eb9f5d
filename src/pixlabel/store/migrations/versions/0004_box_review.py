"""Box review: ``labels.rank`` (0 = one of the model's answers, >= 1 = a ranked alternative that is never
queued) and the box queue's indexes: boxes by (confidence, id), also after status and after source, over the
boxes a reviewer sees only, so a page of the box queue is an index range scan like the class-label queue;
and (image_id, status) over the same boxes, from which the images done are counted.

Revision ID: 0004
Revises: 0003
Created: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_BOX_WHERE = "x1 IS NOT NULL AND rank = 0"


def upgrade() -> None:
    op.add_column("labels", sa.Column("rank", sa.Integer(), nullable=False, server_default="0"))
    for name, columns in (("confidence", []), ("status", ["status"]), ("source", ["source"])):
        op.create_index(f"ix_labels_box_{name}", "labels", [*columns, "confidence", "id"],
                        sqlite_where=sa.text(REVIEW_BOX_WHERE), postgresql_where=sa.text(REVIEW_BOX_WHERE))
    op.create_index("ix_labels_box_image", "labels", ["image_id", "status"], sqlite_where=sa.text(REVIEW_BOX_WHERE),
                    postgresql_where=sa.text(REVIEW_BOX_WHERE))


def downgrade() -> None:
    for name in ("ix_labels_box_image", "ix_labels_box_source", "ix_labels_box_status", "ix_labels_box_confidence"):
        op.drop_index(name, table_name="labels")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("rank")
