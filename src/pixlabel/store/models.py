"""ORM tables of the label store. The migrations in ``migrations/versions`` create exactly this schema.

A change here needs a new migration (``tests/test_store_migrations.py`` compares the two).

>>> sorted(Base.metadata.tables)
['classes', 'history', 'images', 'labels', 'runs']
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints so later migrations can alter them by name on every backend (SQLite batch mode too).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A label without box and mask is the image's class label: at most one per image (the upsert rule in
# ``planning.py`` relies on it; this index makes concurrent writers unable to break it).
CLASS_LABEL_WHERE = "x1 IS NULL AND mask IS NULL"
# A box a reviewer should see: not one of the model's ranked alternatives (``Label.rank``; migration 0004).
REVIEW_BOX_WHERE = "x1 IS NOT NULL AND rank = 0"


class UTCDateTime(TypeDecorator[_dt.datetime]):
    """Timezone-aware UTC in and out. SQLite keeps no offset, so values are stored as naive UTC there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: _dt.datetime | None, dialect: Dialect) -> _dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: the label store stores aware times only")
        value = value.astimezone(_dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: _dt.datetime | None, dialect: Dialect) -> _dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {_dt.datetime: UTCDateTime(), dict[str, Any]: JSON(none_as_null=True)}


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    # NULL for a file that could not be read at all (it only has an error).
    content_hash: Mapped[str | None] = mapped_column(String, index=True)
    height: Mapped[int | None]
    width: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String)
    # Per-image properties (size, aspect, grey, sharpness, colours; migration 0003).
    attributes: Mapped[dict[str, Any] | None]
    first_seen: Mapped[_dt.datetime]
    last_seen: Mapped[_dt.datetime]


class ClassRow(Base):
    __tablename__ = "classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str] = mapped_column(String)
    config: Mapped[dict[str, Any]]
    started_at: Mapped[_dt.datetime]
    finished_at: Mapped[_dt.datetime | None]
    status: Mapped[str] = mapped_column(String)
    stats: Mapped[dict[str, Any] | None]


class LabelRow(Base):
    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint("source IN ('human', 'model', 'synthetic')", name="source"),
        CheckConstraint("status IN ('accepted', 'review')", name="status"),
        Index("uq_labels_class_label_per_image", "image_id", unique=True,
              sqlite_where=CLASS_LABEL_WHERE, postgresql_where=CLASS_LABEL_WHERE),
        # The review queue pages class labels least confident first, optionally by status or source
        # (store/queue.py; migration 0002). Partial, so they also answer its progress counts alone.
        *(Index(f"ix_labels_{name}", *cols, "confidence", "id", sqlite_where=CLASS_LABEL_WHERE,
                postgresql_where=CLASS_LABEL_WHERE)
          for name, cols in (("confidence", ()), ("status", ("status",)), ("source", ("source",)))),
        # The same three for the box queue (store/boxes.py).
        *(Index(f"ix_labels_box_{name}", *cols, "confidence", "id", sqlite_where=REVIEW_BOX_WHERE,
                postgresql_where=REVIEW_BOX_WHERE)
          for name, cols in (("confidence", ()), ("status", ("status",)), ("source", ("source",)))),
        # Images done / open among them: counted from this index alone (box progress at 10⁵ boxes).
        Index("ix_labels_box_image", "image_id", "status", sqlite_where=REVIEW_BOX_WHERE,
              postgresql_where=REVIEW_BOX_WHERE),
        # Ids are never reused (history keeps ids of deleted labels) and can be reserved in bulk.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    x1: Mapped[float | None] = mapped_column(Float)
    y1: Mapped[float | None] = mapped_column(Float)
    x2: Mapped[float | None] = mapped_column(Float)
    y2: Mapped[float | None] = mapped_column(Float)
    mask: Mapped[dict[str, Any] | None]
    # JSON scalars beyond the class, e.g. {"text": "EXIT"} on an OCR box (migration 0003).
    attributes: Mapped[dict[str, Any] | None]
    confidence: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String)
    labeler: Mapped[str] = mapped_column(String)
    model_version: Mapped[str] = mapped_column(String)
    round: Mapped[int]
    status: Mapped[str] = mapped_column(String)
    rank: Mapped[int] = mapped_column(server_default="0")  # records.Label.rank
    created_at: Mapped[_dt.datetime]
    updated_at: Mapped[_dt.datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))


class HistoryRow(Base):
    """Audit trail: one row per change of a label or an image, oldest first by ``id``."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    # No foreign key: the audit must keep the id of a label that was later deleted (replaced model boxes).
    label_id: Mapped[int | None] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String)
    at: Mapped[_dt.datetime]
    old: Mapped[dict[str, Any] | None]
    new: Mapped[dict[str, Any] | None]
    reason: Mapped[str] = mapped_column(String)


def table(model: type[Base]) -> Table:
    """The Core ``Table`` of a model, typed as such (for executemany-batched Core statements)."""
    return Base.metadata.tables[model.__tablename__]
