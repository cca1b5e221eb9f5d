"""The review queue on the label store: paged SQL, least confident first, plus the review writes.

Pages are one indexed query each (``ix_labels_confidence`` on ``(confidence, id)``, and the same after
``status`` or ``source`` for those filters), never a load of every
label into Python, so a page costs the same with 10² or 10⁵ labels. Paging is by keyset cursor (the last
row's ``(confidence, id)``), which stays fast and stable while reviewers change labels; ``offset`` is there
for jumping but costs O(offset).

>>> import tempfile, pathlib
>>> from pixlabel.store import open_store
>>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "pixlabel.db")
>>> _ = store.sync_images([("a.png", "h")]); store.ensure_classes(["cat", "dog"])
>>> [x.path for x in store.queue(limit=10).items]
[]
>>> store.close()
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from pixlabel.errors import InputError
from pixlabel.records import SOURCES, STATUSES, Label, Provenance, utcnow
from pixlabel.store import writes
from pixlabel.store.convert import snapshot_from_row
from pixlabel.store.models import ClassRow, HistoryRow, ImageRow, LabelRow
from pixlabel.store.planning import PutPlan, Stored
from pixlabel.store.sqlhelp import lock_images

MAX_PAGE = 1000
# History reasons a reviewer's undo may revert (what the review app writes).
REVIEW_REASONS = ("human correction", "bulk accept")


@dataclass(frozen=True)
class QueueItem:
    """One label as the review queue shows it: an image's class label, or one box (``store/boxes.py``)."""

    id: int  # label id (with ``confidence`` the paging key)
    path: str
    label: str
    confidence: float
    status: str
    source: str
    labeler: str
    updated_at: _dt.datetime  # also the label's version: a box edit naming an older one is refused
    box: tuple[float, float, float, float] | None = None  # [x, y, w, h] in image pixels; None: class label

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label, "confidence": self.confidence, "status": self.status,
                "source": self.source, "labeler": self.labeler, "updated_at": self.updated_at.isoformat(),
                "label_id": self.id, "box": None if self.box is None else list(self.box)}


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last page


@dataclass(frozen=True)
class ReviewProgress:
    """Counts over class labels. ``estimated_accuracy`` = (human labels + Σ calibrated confidence of the
    machine labels) / all labels: the expected share of correct labels if humans are right and the
    confidences are calibrated."""

    total: int
    human: int  # set by a person: reviewed, or given as seeds (``seeds`` counts those)
    seeds: int
    to_review: int  # labels with status "review" (below the accept threshold)
    estimated_accuracy: float | None  # None when there are no labels

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def encode_cursor(confidence: float, label_id: int) -> str:
    return f"{confidence!r}_{label_id}"  # repr round-trips a float exactly


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        conf, _, ident = cursor.partition("_")
        return float(conf), int(ident)
    except ValueError:
        raise InputError(f"bad queue cursor {cursor!r}: expected the next_cursor of an earlier page") from None


def check_filters(status: str | None, source: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    if source is not None and source not in SOURCES:
        raise InputError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def class_id_of(session: Session, name: str) -> int:
    found = session.execute(select(ClassRow.id).where(ClassRow.name == name)).scalar()
    if found is None:
        known = ", ".join(session.execute(select(ClassRow.name).order_by(ClassRow.id)).scalars())
        raise InputError(f"unknown class {name!r}; known: {known or 'none'}")
    return int(found)


_CLASS_LABEL = (LabelRow.x1.is_(None), LabelRow.mask.is_(None))
ITEM_COLUMNS = (LabelRow.id, ImageRow.path, ClassRow.name, LabelRow.confidence, LabelRow.status,
                 LabelRow.source, LabelRow.labeler, LabelRow.updated_at)


def _item(row: Any) -> QueueItem:
    return QueueItem(row.id, row.path, row.name, row.confidence, row.status, row.source, row.labeler,
                     row.updated_at)


def keyset_page(session: Session, columns: Sequence[Any], where: Sequence[Any], to_item: Callable[[Any], QueueItem],
                *, index_prefix: str, limit: int, after: str | None, offset: int, label: str | None,
                status: str | None, source: str | None) -> QueuePage:
    """One page of labels matching ``where``, least confident first (ties by label id), after the keyset cursor
    ``after``; the class-label queue and the box queue differ only in columns, condition and index names
    (``{index_prefix}_confidence``, ``_status``, ``_source``: one per filter, each in queue order)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be 1..{MAX_PAGE}, got {limit}")
    if offset < 0:
        raise InputError(f"offset must be >= 0, got {offset}")
    check_filters(status, source)
    stmt = (select(*columns)
            .join(ImageRow, LabelRow.image_id == ImageRow.id)
            .join(ClassRow, LabelRow.class_id == ClassRow.id)
            .where(*where)
            .order_by(LabelRow.confidence, LabelRow.id)
            .limit(limit + 1).offset(offset))
    index = f"{index_prefix}_{'source' if source else 'status' if status else 'confidence'}"
    stmt = stmt.with_hint(LabelRow, f"INDEXED BY {index}", "sqlite")
    if after is not None:
        stmt = stmt.where(tuple_(LabelRow.confidence, LabelRow.id) > tuple_(*decode_cursor(after)))
    if status is not None:
        stmt = stmt.where(LabelRow.status == status)
    if source is not None:
        stmt = stmt.where(LabelRow.source == source)
    if label is not None:
        stmt = stmt.where(LabelRow.class_id == class_id_of(session, label))
    items = [to_item(r) for r in session.execute(stmt)]
    more = len(items) > limit
    items = items[:limit]
    return QueuePage(items, encode_cursor(items[-1].confidence, items[-1].id) if more else None)


class ReviewQueueMixin:
    """Review-queue methods of ``LabelStore`` (kept in their own file; ``LabelStore`` inherits them)."""

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    def queue(self, *, limit: int = 50, after: str | None = None, offset: int = 0, label: str | None = None,
              status: str | None = None, source: str | None = None) -> QueuePage:
        """A page of class labels, least confident first (ties by label id), optionally filtered.

        ``after`` is the ``next_cursor`` of the previous page.
        """
        # Each filter has an index that yields rows already in queue order. SQLite's planner, left alone, may
        # drive the query from the partial unique index (it matches the class-label WHERE) and sort 10⁵ rows.
        with self._read() as session:
            return keyset_page(session, ITEM_COLUMNS, _CLASS_LABEL, _item, index_prefix="ix_labels", limit=limit,
                               after=after, offset=offset, label=label, status=status, source=source)

    def has_image(self, path: str) -> bool:
        """Whether ``path`` is an image the store knows (the review app serves no other file)."""
        with self._read() as session:
            return session.execute(select(ImageRow.id).where(ImageRow.path == path)).scalar() is not None

    def current_label(self, path: str) -> QueueItem | None:
        """The class label of ``path`` (None if it has none); unknown images are an error."""
        with self._read() as session:
            if session.execute(select(ImageRow.id).where(ImageRow.path == path)).scalar() is None:
                raise InputError(f"unknown image {path!r}: not in the label store")
            row = session.execute(select(*ITEM_COLUMNS)
                                  .join(ImageRow, LabelRow.image_id == ImageRow.id)
                                  .join(ClassRow, LabelRow.class_id == ClassRow.id)
                                  .where(ImageRow.path == path, *_CLASS_LABEL)).first()
            return None if row is None else _item(row)

    def progress(self) -> ReviewProgress:
        """Counts for the review page, from the partial queue indexes (no table scan at 10⁵ labels)."""
        by_source = (select(LabelRow.source, func.count(), func.sum(LabelRow.confidence))
                     .where(*_CLASS_LABEL).group_by(LabelRow.source)
                     .with_hint(LabelRow, "INDEXED BY ix_labels_source", "sqlite"))
        review = (select(func.count()).select_from(LabelRow).where(*_CLASS_LABEL, LabelRow.status == "review")
                  .with_hint(LabelRow, "INDEXED BY ix_labels_status", "sqlite"))
        seeds = (select(func.count()).select_from(LabelRow)
                 .where(*_CLASS_LABEL, LabelRow.source == "human", LabelRow.labeler == "seed")
                 .with_hint(LabelRow, "INDEXED BY ix_labels_source", "sqlite"))
        total = human = 0
        expected = 0.0
        with self._read() as session:
            for source, n, conf in session.execute(by_source):
                total += n
                human += n if source == "human" else 0
                expected += n if source == "human" else float(conf or 0.0)
            to_review = int(session.execute(review).scalar_one())
            n_seeds = int(session.execute(seeds).scalar_one())
        return ReviewProgress(total, human, n_seeds, to_review, expected / total if total else None)

    def accept_matching(self, *, label: str, actor: str, min_confidence: float = 0.0,
                        status: str | None = None) -> int:
        """Bulk accept: every machine label of class ``label`` with confidence >= ``min_confidence`` (and
        ``status``, if given) becomes that reviewer's human label, in one transaction; returns how many."""
        check_filters(status, None)
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if not actor:
            raise InputError("accept_matching: actor must name who made the change")
        with self._write() as session:
            stmt = (select(ImageRow.path).join(LabelRow, LabelRow.image_id == ImageRow.id)
                    .where(*_CLASS_LABEL, LabelRow.class_id == class_id_of(session, label),
                           LabelRow.source != "human", LabelRow.confidence >= min_confidence))
            if status is not None:
                stmt = stmt.where(LabelRow.status == status)
            paths = list(session.execute(stmt).scalars())
            new = [Label(p, label, 1.0, Provenance(source="human", labeler=actor), status="accepted")
                   for p in paths]
            if new:
                writes.put(session, new, run_id=None, actor=actor, reason="bulk accept", force=False,
                           now=utcnow())
        return len(new)

    def undo_last(self, path: str, *, actor: str) -> QueueItem:
        """Revert ``actor``'s last review change of ``path`` to the label it replaced (even a model label).

        Refused when someone else changed the image since, or the last change was not a review by ``actor``:
        undo must never silently drop another reviewer's work.
        """
        with self._write() as session:
            image_id = session.execute(select(ImageRow.id).where(ImageRow.path == path)).scalar()
            if image_id is None:
                raise InputError(f"unknown image {path!r}: not in the label store")
            lock_images(session, [image_id])
            last = session.execute(select(HistoryRow).where(HistoryRow.image_id == image_id)
                                   .order_by(HistoryRow.id.desc()).limit(1)).scalar()
            if (last is None or last.actor != actor or last.reason not in REVIEW_REASONS or last.old is None
                    or last.new is None or last.old.get("box") is not None or last.old.get("mask") is not None):
                what = "no change" if last is None else f"{last.reason!r} by {last.actor}"
                raise InputError(f"{path}: nothing of {actor}'s to undo (the last change was {what})")
            current = _stored_class_label(session, image_id)
            if current is None or current.snapshot != last.new:
                raise InputError(f"{path}: changed since {actor}'s last review; nothing undone")
            restored = _label_from_snapshot(path, last.old)
            class_ids = {r.name: r.id for r in session.execute(select(ClassRow.name, ClassRow.id))}
            # A plain put would keep the human label (model labels never replace human ones); undo is the
            # one place that must, so it applies the update directly, with its own history row.
            writes._apply(session, PutPlan(updates=[(current, restored)]), class_ids=class_ids, run_id=None,
                          actor=actor, reason="undo", now=utcnow())
        item = self.current_label(path)
        if item is None:  # pragma: no cover - the update above wrote it
            raise RuntimeError(f"{path}: label vanished during undo")
        return item


def _stored_class_label(session: Session, image_id: int) -> Stored | None:
    row = session.execute(select(LabelRow, ClassRow.name).join(ClassRow, LabelRow.class_id == ClassRow.id)
                          .where(LabelRow.image_id == image_id, *_CLASS_LABEL)).first()
    if row is None:
        return None
    label_row, name = row
    return Stored(label_row.id, image_id, snapshot_from_row(label_row, class_name=name))


def _label_from_snapshot(path: str, snap: dict[str, Any]) -> Label:
    return Label(path, snap["label"], float(snap["confidence"]),
                 Provenance(source=snap["source"], labeler=snap["labeler"], model_version=snap["model_version"],
                            round=int(snap["round"])),
                 status=snap["status"])

