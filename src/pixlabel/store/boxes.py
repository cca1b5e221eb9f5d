"""Boxes in review: the box queue (paged like the class-label queue) and a reviewer's box edits.

The queue holds the boxes a reviewer should see, ``rank`` 0 (``records.Label.rank``), least confident first,
one indexed query per page over the partial indexes of migration 0004. Edits write human boxes through the
store's one write path (``writes._apply``: one history row per change, like class labels), with the checks a
page shared by several reviewers needs: the label id must exist (``LabelNotFound``) and, when the client
says which version it saw, nobody may have changed the box since (``StaleEdit``). A reviewer's decision on a
box also removes the model's ranked alternatives under it: they were the model's other guesses for that place.

>>> import tempfile, pathlib
>>> from pixlabel.store import open_store
>>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "pixlabel.db")
>>> _ = store.sync_images([("a.png", "h", (48, 64))]); store.ensure_classes(["cat"])
>>> store.add_box("a.png", "cat", (4, 4, 20, 10), actor="ana").box
(4.0, 4.0, 20.0, 10.0)
>>> store.close()
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from pixlabel.errors import InputError
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance, utcnow
from pixlabel.store import writes
from pixlabel.store.convert import snapshot_from_row
from pixlabel.store.models import ClassRow, HistoryRow, ImageRow, LabelRow, table
from pixlabel.store.planning import PutPlan, Stored
from pixlabel.store.queue import (
    ITEM_COLUMNS,
    QueueItem,
    QueuePage,
    class_id_of,
    keyset_page,
)
from pixlabel.store.sqlhelp import in_chunks, lock_images

# History reasons of a reviewer's box work; a relabel run treats images with them as reviewed.
BOX_REASONS = ("human correction", "image accepted")
ALTERNATIVE_IOU = 0.5  # an alternative this close to a box a reviewer decided on was a guess for that place
# The literal 0 (not a bound parameter): SQLite uses a partial index only when the query repeats its WHERE.
_REVIEW_BOX = (LabelRow.x1.is_not(None), LabelRow.rank == literal_column("0"))
_BOX_COLUMNS = (*ITEM_COLUMNS, LabelRow.x1, LabelRow.y1, LabelRow.x2, LabelRow.y2)


class LabelNotFound(InputError):
    """No current box label with this id (never was, or deleted since)."""


class StaleEdit(InputError):
    """The box changed after the version the client saw."""


class BadBox(InputError):
    """A box outside its image or of zero area."""


@dataclass(frozen=True)
class BoxProgress:
    """Counts over the boxes a reviewer sees (rank 0). An image is done when none of its boxes awaits review."""

    boxes: int
    human: int
    to_review: int
    images: int  # images with at least one such box
    images_done: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _box_item(row: Any) -> QueueItem:
    return QueueItem(row.id, row.path, row.name, row.confidence, row.status, row.source, row.labeler,
                     row.updated_at, (row.x1, row.y1, row.x2 - row.x1, row.y2 - row.y1))


def check_box(box: Sequence[float], image_size: tuple[int, int]) -> Box:
    """``[x, y, w, h]`` in pixels of an image of ``(h, w)`` as a ``Box``; ``BadBox`` naming the field if it is
    not four numbers, has no area or leaves the image."""
    h, w = image_size
    if len(box) != 4:
        raise BadBox(f"box: expected [x, y, w, h], got {list(box)!r}")
    x, y, bw, bh = (float(v) for v in box)
    if not (bw > 0 and bh > 0):
        raise BadBox(f"box [x, y, w, h] = {list(box)!r}: width and height must be > 0 (zero area)")
    if x < 0 or y < 0 or x + bw > w or y + bh > h:
        raise BadBox(f"box [x, y, w, h] = {list(box)!r} leaves the image: expected x, y >= 0, x + w <= {w} "
                     f"and y + h <= {h} (image width {w}, height {h})")
    return Box.from_xywh(x, y, bw, bh, image_size=(h, w))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class BoxReviewMixin:
    """Box-queue and box-edit methods of ``LabelStore`` (it inherits them)."""

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    # -- reads ------------------------------------------------------------------------------------------

    def has_boxes(self) -> bool:
        """Whether any label has a box (the review app then shows the box queue)."""
        with self._read() as session:
            stmt = select(LabelRow.id).where(LabelRow.x1.is_not(None)).limit(1)
            return session.execute(stmt).first() is not None

    def box_queue(self, *, limit: int = 50, after: str | None = None, offset: int = 0, label: str | None = None,
                  status: str | None = None, source: str | None = None) -> QueuePage:
        """A page of boxes (rank 0), least confident first (ties by label id); ``after`` = ``next_cursor``."""
        with self._read() as session:
            return keyset_page(session, _BOX_COLUMNS, _REVIEW_BOX, _box_item, index_prefix="ix_labels_box",
                               limit=limit, after=after, offset=offset, label=label, status=status, source=source)

    def boxes_of(self, paths: Iterable[str]) -> dict[str, list[QueueItem]]:
        """Every box a reviewer sees (rank 0) on each of ``paths``, by label id: what the page draws."""
        wanted = list(dict.fromkeys(paths))
        out: dict[str, list[QueueItem]] = {p: [] for p in wanted}
        with self._read() as session:
            for condition in in_chunks(session, ImageRow.path, wanted):
                stmt = (select(*_BOX_COLUMNS).join(ImageRow, LabelRow.image_id == ImageRow.id)
                        .join(ClassRow, LabelRow.class_id == ClassRow.id)
                        .where(condition, *_REVIEW_BOX).order_by(LabelRow.id))
                for row in session.execute(stmt):
                    out[row.path].append(_box_item(row))
        return out

    def image_sizes(self, paths: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """``(h, w)`` of each known path (None when the store has not seen its size)."""
        wanted = list(dict.fromkeys(paths))
        out: dict[str, tuple[int, int] | None] = {}
        with self._read() as session:
            for condition in in_chunks(session, ImageRow.path, wanted):
                for r in session.execute(select(ImageRow.path, ImageRow.height, ImageRow.width).where(condition)):
                    out[r.path] = None if r.height is None else (int(r.height), int(r.width))
        return out

    def box_progress(self) -> BoxProgress:
        """Counts for the box page, from the box indexes alone (no table scan at 10⁵ boxes)."""
        by_source = (select(LabelRow.source, func.count()).where(*_REVIEW_BOX).group_by(LabelRow.source)
                     .with_hint(LabelRow, "INDEXED BY ix_labels_box_source", "sqlite"))
        review = (select(func.count()).select_from(LabelRow).where(*_REVIEW_BOX, LabelRow.status == "review")
                  .with_hint(LabelRow, "INDEXED BY ix_labels_box_status", "sqlite"))
        # One ordered pass over ix_labels_box_image (image_id, status) counts images and open images; a
        # count(DISTINCT image_id) with "status = ?" made SQLite sort through a temp B-tree (265 ms at 10⁵).
        per_image = (select(LabelRow.image_id,
                            func.max(case((LabelRow.status == "review", 1), else_=0)).label("open"))
                     .where(*_REVIEW_BOX).group_by(LabelRow.image_id).subquery())
        images = select(func.count(), func.coalesce(func.sum(per_image.c.open), 0))
        with self._read() as session:
            counts = {str(k): int(v) for k, v in session.execute(by_source)}
            to_review = int(session.execute(review).scalar_one())
            n_images, n_open = (int(v) for v in session.execute(images).one())
        return BoxProgress(sum(counts.values()), int(counts.get("human", 0)), to_review, n_images,
                           n_images - n_open)

    def reviewed_box_images(self) -> dict[str, list[Label]]:
        """Images a reviewer finished: touched by a box review and no model box (rank 0) left on them. Their
        human boxes are the whole truth of the image (an empty list: nothing there)."""
        with self._read() as session:
            touched = set(session.execute(select(HistoryRow.image_id).distinct()
                                          .where(HistoryRow.reason.in_(BOX_REASONS))).scalars())
            if not touched:
                return {}
            machine = set(session.execute(select(LabelRow.image_id).distinct()
                                          .where(*_REVIEW_BOX, LabelRow.source != "human")).scalars())
            done = sorted(touched - machine)
            paths: dict[int, str] = {}
            for condition in in_chunks(session, ImageRow.id, done):
                paths.update((int(i), str(p)) for i, p in session.execute(select(ImageRow.id, ImageRow.path)
                                                                         .where(condition)))
        labels: dict[str, list[Label]] = {p: [] for p in paths.values()}
        for lab in self.labels_of(list(labels), source="human"):
            if lab.box is not None:
                labels[lab.image].append(lab)
        return labels

    def box_dataset(self, paths: Iterable[str] | None = None) -> Dataset:
        """Every current box/mask label (alternatives too) on the readable images of known size (or only on
        ``paths``), with every such image and the class list: what ``labels.coco.json`` holds."""
        from pixlabel.store.convert import label_from_row

        stmt = (select(*table(LabelRow).c, ImageRow.path, ImageRow.height, ImageRow.width, ClassRow.name)
                .join(ImageRow, LabelRow.image_id == ImageRow.id).join(ClassRow, LabelRow.class_id == ClassRow.id)
                .where(LabelRow.x1.is_not(None) | LabelRow.mask.is_not(None)).order_by(ImageRow.path, LabelRow.id))
        images = (select(ImageRow.path, ImageRow.height, ImageRow.width)
                  .where(ImageRow.height.is_not(None), ImageRow.error.is_(None)).order_by(ImageRow.path))
        keep = None if paths is None else set(paths)
        with self._read() as session:
            infos = [ImageInfo(r.path, (int(r.height), int(r.width))) for r in session.execute(images)
                     if keep is None or r.path in keep]
            shown = {i.path for i in infos}
            labels = [label_from_row(r, path=r.path, class_name=r.name, image_size=(r.height, r.width))
                      for r in session.execute(stmt) if r.path in shown]
            classes = tuple(session.execute(select(ClassRow.name).order_by(ClassRow.id)).scalars())
        return Dataset(infos, labels, Ontology(classes))

    def labels_of(self, paths: list[str], *, source: str | None = None) -> list[Label]:
        """Current labels of some images (what ``labels()`` returns for all)."""
        from pixlabel.store.convert import label_from_row

        out: list[Label] = []
        with self._read() as session:
            for condition in in_chunks(session, ImageRow.path, paths):
                stmt = (select(*table(LabelRow).c, ImageRow.path, ImageRow.height, ImageRow.width, ClassRow.name)
                        .join(ImageRow, LabelRow.image_id == ImageRow.id)
                        .join(ClassRow, LabelRow.class_id == ClassRow.id)
                        .where(condition).order_by(ImageRow.path, LabelRow.id))
                if source is not None:
                    stmt = stmt.where(LabelRow.source == source)
                out += [label_from_row(r, path=r.path, class_name=r.name,
                                       image_size=None if r.height is None else (r.height, r.width))
                        for r in session.execute(stmt)]
        return out

    # -- writes -----------------------------------------------------------------------------------------

    def add_box(self, path: str, label: str, box: Sequence[float], *, actor: str,
                image_size: tuple[int, int] | None = None) -> QueueItem:
        """A reviewer's new box ``[x, y, w, h]`` on ``path``: human, accepted, confidence 1.0.

        ``image_size`` ``(h, w)`` is recorded when the store does not know the image's size yet.
        """
        with self._write() as session:
            image = _locked_image(session, path)
            size = _size_of(session, image, image_size)
            new = _human_box(path, label, check_box(box, size), actor)
            class_ids = {label: class_id_of(session, label)}
            alts = _alternatives_near(session, image.id, [new.box], class_names=class_ids)
            writes._apply(session, PutPlan(inserts=[(image.id, new)], deletes=alts), class_ids=class_ids,
                          run_id=None, actor=actor, reason="human correction", now=utcnow())
            _drop_alternatives_if_done(session, image.id, actor=actor)
            # Ids only grow (``reserve_ids``) and the image is locked: the newest box of the image is this one.
            label_id = session.execute(select(func.max(LabelRow.id)).where(LabelRow.image_id == image.id)).scalar()
            return _read_item(session, int(label_id or 0))

    def replace_box(self, label_id: int, label: str, box: Sequence[float] | None, *, actor: str,
                    path: str | None = None, version: _dt.datetime | None = None) -> QueueItem:
        """Replace box ``label_id`` by the reviewer's ``label`` and ``box`` (None keeps the geometry): the
        same id, now human and accepted. Accepting a model box is replacing it by itself."""
        with self._write() as session:
            old, image = _current_box(session, label_id, path=path, version=version)
            size = _size_of(session, image, None)
            geometry = check_box(box, size) if box is not None else _box(old.snapshot["box"], size)
            new = _human_box(image.path, label, geometry, actor)
            class_ids = {n: class_id_of(session, n) for n in {label, old.snapshot["label"]}}
            alts = _alternatives_near(session, image.id, [geometry, old.snapshot["box"]], class_names=class_ids)
            writes._apply(session, PutPlan(updates=[(old, new)], deletes=alts), class_ids=class_ids,
                          run_id=None, actor=actor, reason="human correction", now=utcnow())
            _drop_alternatives_if_done(session, image.id, actor=actor)
            return _read_item(session, label_id)

    def delete_box(self, label_id: int, *, actor: str, path: str | None = None,
                   version: _dt.datetime | None = None) -> None:
        """Remove box ``label_id`` (and the model's alternatives under it); history keeps what it was."""
        with self._write() as session:
            old, image = _current_box(session, label_id, path=path, version=version)
            class_ids = {old.snapshot["label"]: class_id_of(session, old.snapshot["label"])}
            alts = _alternatives_near(session, image.id, [old.snapshot["box"]], class_names=class_ids)
            writes._apply(session, PutPlan(deletes=[old, *alts]), class_ids=class_ids, run_id=None, actor=actor,
                          reason="human correction", now=utcnow())
            _drop_alternatives_if_done(session, image.id, actor=actor)

    def accept_image_boxes(self, path: str, *, actor: str) -> int:
        """Every model box of ``path`` as it is becomes the reviewer's; the alternatives go. Returns how many
        boxes were accepted (0 for an image without model boxes: still recorded, as "nothing else here")."""
        with self._write() as session:
            image = _locked_image(session, path)
            size = _size_of(session, image, None)
            rows = _stored_boxes(session, image.id)
            class_ids = {r.snapshot["label"]: class_id_of(session, r.snapshot["label"]) for r in rows}
            updates = [(r, _human_box(path, r.snapshot["label"], _box(r.snapshot["box"], size), actor))
                       for r in rows if not r.snapshot.get("rank") and r.source != "human"]
            deletes = [r for r in rows if r.snapshot.get("rank")]
            plan = PutPlan(updates=updates, deletes=deletes)
            writes._apply(session, plan, class_ids=class_ids, run_id=None, actor=actor, reason="image accepted",
                          now=utcnow())
            if not updates and not deletes:  # an empty image confirmed empty: the relabel run must know
                session.execute(table(HistoryRow).insert().values(
                    image_id=image.id, label_id=None, actor=actor, at=utcnow(), old=None, new=None,
                    reason="image accepted"))
            return len(updates)


def _box(corners: Sequence[float], size: tuple[int, int]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in corners)
    return Box(x1, y1, x2, y2, image_size=size)


def _human_box(path: str, label: str, box: Box, actor: str) -> Label:
    return Label(path, label, 1.0, Provenance(source="human", labeler=actor), status="accepted", box=box)


def _locked_image(session: Session, path: str) -> Any:
    image_id = session.execute(select(ImageRow.id).where(ImageRow.path == path)).scalar()
    if image_id is None:
        raise LabelNotFound(f"unknown image {path!r}: not in the label store")
    return lock_images(session, [image_id])[0]


def _size_of(session: Session, image: Any, given: tuple[int, int] | None) -> tuple[int, int]:
    if image.height is not None:
        return int(image.height), int(image.width)
    if given is None:
        raise InputError(f"{image.path}: the label store does not know this image's size")
    session.execute(table(ImageRow).update().where(ImageRow.id == image.id)
                    .values(height=int(given[0]), width=int(given[1])))
    return int(given[0]), int(given[1])


def _stored_boxes(session: Session, image_id: int) -> list[Stored]:
    rows = session.execute(select(LabelRow, ClassRow.name).join(ClassRow, LabelRow.class_id == ClassRow.id)
                           .where(LabelRow.image_id == image_id, LabelRow.x1.is_not(None))).all()
    return [Stored(r.id, image_id, snapshot_from_row(r, class_name=name)) for r, name in rows]


def _current_box(session: Session, label_id: int, *, path: str | None,
                 version: _dt.datetime | None) -> tuple[Stored, Any]:
    row = session.execute(select(LabelRow.image_id).where(LabelRow.id == label_id, LabelRow.x1.is_not(None))
                          ).scalar()
    if row is None:
        raise LabelNotFound(f"label_id {label_id}: no such box (deleted, or never was)")
    image = lock_images(session, [row])[0]
    if path is not None and image.path != path:
        raise LabelNotFound(f"label_id {label_id} is a box of {image.path!r}, not of {path!r}")
    found = session.execute(select(LabelRow, ClassRow.name).join(ClassRow, LabelRow.class_id == ClassRow.id)
                            .where(LabelRow.id == label_id)).first()
    if found is None:  # deleted between the two reads (PostgreSQL, before the image lock)
        raise LabelNotFound(f"label_id {label_id}: no such box (deleted, or never was)")
    label_row, name = found
    if version is not None and label_row.updated_at != version:
        raise StaleEdit(f"label_id {label_id} changed at {label_row.updated_at.isoformat()} after the version "
                        f"you edited ({version.isoformat()}); reload it and try again")
    return Stored(label_id, image.id, snapshot_from_row(label_row, class_name=name)), image


def _alternatives_near(session: Session, image_id: int, boxes: Sequence[Any], *,
                       class_names: dict[str, int]) -> list[Stored]:
    """The image's ranked alternatives (rank >= 1, model) overlapping any of ``boxes`` at IoU >= 0.5; their
    class ids are added to ``class_names`` (``_apply`` needs them)."""
    corners = [[b.x1, b.y1, b.x2, b.y2] if isinstance(b, Box) else list(b) for b in boxes if b is not None]
    out = []
    for r in _stored_boxes(session, image_id):
        if r.snapshot.get("rank") and r.source != "human" and any(
                _iou(r.snapshot["box"], c) >= ALTERNATIVE_IOU for c in corners):
            out.append(r)
            class_names.setdefault(r.snapshot["label"], class_id_of(session, r.snapshot["label"]))
    return out


def _drop_alternatives_if_done(session: Session, image_id: int, *, actor: str) -> None:
    """Once no model answer is left on an image, its remaining alternatives were guesses the reviewer passed
    over: they go (with history), so the image is finished for the next run, "nothing else here" included."""
    rows = _stored_boxes(session, image_id)
    if any(r.source != "human" and not r.snapshot.get("rank") for r in rows):
        return
    alts = [r for r in rows if r.source != "human" and r.snapshot.get("rank")]
    if alts:
        class_ids = {r.snapshot["label"]: class_id_of(session, r.snapshot["label"]) for r in alts}
        writes._apply(session, PutPlan(deletes=alts), class_ids=class_ids, run_id=None, actor=actor,
                      reason="human correction", now=utcnow())


def _read_item(session: Session, label_id: int) -> QueueItem:
    row = session.execute(select(*_BOX_COLUMNS).join(ImageRow, LabelRow.image_id == ImageRow.id)
                          .join(ClassRow, LabelRow.class_id == ClassRow.id).where(LabelRow.id == label_id)).first()
    if row is None:  # pragma: no cover - written in the same transaction
        raise RuntimeError(f"label {label_id} vanished during its own write")
    return _box_item(row)
