"""``LabelStore.put_labels`` against the database: resolve names, lock, plan (``planning.py``), write in bulk.

All writes of a call happen in the caller's one transaction and in bulk (executemany on SQLite, COPY on
PostgreSQL), so 10⁵ labels take seconds: a few statements per batch rather than one per label.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pixlabel.errors import InputError
from pixlabel.records import Label
from pixlabel.store.convert import region_size, row_values, snapshot, snapshot_from_row
from pixlabel.store.models import ClassRow, HistoryRow, ImageRow, LabelRow, RunRow, table
from pixlabel.store.planning import PutPlan, Stored, plan_put, plan_review
from pixlabel.store.results import PutResult
from pixlabel.store.sqlhelp import bulk_insert, in_chunks, lock_images, reserve_ids


def put(session: Session, labels: Sequence[Label], *, run_id: int | None, actor: str, reason: str,
        force: bool, now: _dt.datetime, reviewed: Sequence[str] | None = None) -> PutResult:
    """Write ``labels`` by ``plan_put``; with ``reviewed`` paths, by ``plan_review`` (those images get exactly
    their incoming labels)."""
    if run_id is not None and session.get(RunRow, run_id) is None:
        raise InputError(f"run id {run_id} is not in the label store (start_run returns valid ids)")
    class_ids = _class_ids(session, labels)
    image_ids = _image_ids(session, sorted({x.image for x in labels} | set(reviewed or ())))
    images = {r.id: r for r in lock_images(session, list(image_ids.values()))}
    sizes = _check_sizes(labels, image_ids, images)
    incoming = [(image_ids[x.image], x) for x in labels]
    stored = _stored(session, images, class_ids)
    if reviewed is None:
        plan = plan_put(stored, incoming, force=force)
    else:
        plan = plan_review(stored, incoming, [image_ids[p] for p in dict.fromkeys(reviewed)])
    _apply(session, plan, class_ids=class_ids, run_id=run_id, actor=actor, reason=reason, now=now)
    if sizes:  # images whose size was unknown until a box or mask was drawn on them
        session.execute(update(ImageRow),
                        [{"id": i, "height": h, "width": w} for i, (h, w) in sorted(sizes.items())])
    return PutResult(inserted=len(plan.inserts), updated=len(plan.updates), deleted=len(plan.deletes),
                     unchanged=plan.unchanged, kept_human=plan.kept_human)


def _class_ids(session: Session, labels: Sequence[Label]) -> dict[str, int]:
    known = {r.name: r.id for r in session.execute(select(ClassRow.name, ClassRow.id))}
    unknown = sorted({x.label for x in labels} - set(known))
    if unknown:
        example = next(x for x in labels if x.label == unknown[0])
        raise InputError(
            f"unknown class(es) {', '.join(map(repr, unknown[:10]))} (e.g. on {example.image}); "
            f"known: {', '.join(sorted(known)) or 'none'}; add classes with ensure_classes first"
        )
    return known


def _image_ids(session: Session, paths: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for condition in in_chunks(session, ImageRow.path, paths):
        rows = session.execute(select(ImageRow.path, ImageRow.id).where(condition))
        found.update((r.path, r.id) for r in rows)
    missing = [p for p in paths if p not in found]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(f"unknown image(s) {', '.join(map(repr, missing[:5]))}{more}: not in the label "
                         "store; add them with sync_images (pixlabel ingest) first")
    return found


def _check_sizes(labels: Sequence[Label], image_ids: dict[str, int], images: dict[int, Any]
                 ) -> dict[int, tuple[int, int]]:
    """Sizes to record for images that had none; a box drawn on a different size than stored is refused."""
    new_sizes: dict[int, tuple[int, int]] = {}
    for label in labels:
        size = region_size(label)
        if size is None:
            continue
        image = images[image_ids[label.image]]
        stored = (image.height, image.width) if image.height is not None else new_sizes.get(image.id)
        if stored is None:
            new_sizes[image.id] = size
        elif stored != size:
            raise InputError(f"label for {label.image}: box/mask drawn on an image of (h, w) {size}, "
                             f"but the image is {stored}")
    return new_sizes


def _stored(session: Session, images: dict[int, Any], class_ids: dict[str, int]) -> dict[int, list[Stored]]:
    names = {v: k for k, v in class_ids.items()}
    columns = [c for c in table(LabelRow).c if c.name not in ("created_at", "updated_at", "run_id")]
    out: dict[int, list[Stored]] = {}
    for condition in in_chunks(session, LabelRow.image_id, sorted(images)):
        for row in session.execute(select(*columns).where(condition)):
            snap = snapshot_from_row(row, class_name=names[row.class_id])
            out.setdefault(row.image_id, []).append(Stored(row.id, row.image_id, snap))
    return out


def _apply(session: Session, plan: PutPlan, *, class_ids: dict[str, int], run_id: int | None, actor: str,
           reason: str, now: _dt.datetime) -> None:
    # Core statements on the session's connection: the ORM's per-row bookkeeping would triple the time of
    # a large batch, and nothing here needs identity-mapped objects. An update is written as delete plus
    # insert under the same id: every column changes anyway, and batched inserts are far faster than
    # row-by-row UPDATEs (psycopg sends one statement per row of an executemany).
    conn = session.connection()
    labels = table(LabelRow)
    history: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []

    def audit(image_id: int, label_id: int, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        history.append({"image_id": image_id, "label_id": label_id, "actor": actor, "at": now, "old": old,
                        "new": new, "reason": reason})

    def write(label_id: int, image_id: int, label: Label) -> None:
        rows.append({"id": label_id, **row_values(label, image_id=image_id, class_id=class_ids[label.label],
                                                  run_id=run_id, now=now)})

    replaced = [r.id for r in plan.deletes] + [old.id for old, _ in plan.updates]
    for condition in in_chunks(session, labels.c.id, replaced):
        conn.execute(delete(labels).where(condition))
    for row in plan.deletes:
        audit(row.image_id, row.id, row.snapshot, None)
    for old, new in plan.updates:
        write(old.id, old.image_id, new)
        audit(old.image_id, old.id, old.snapshot, snapshot(new))
    for label_id, (image_id, label) in zip(reserve_ids(session, labels.name, len(plan.inserts)), plan.inserts,
                                           strict=True):
        write(label_id, image_id, label)
        audit(image_id, label_id, None, snapshot(label))
    bulk_insert(conn, labels, rows)
    bulk_insert(conn, table(HistoryRow), history)
