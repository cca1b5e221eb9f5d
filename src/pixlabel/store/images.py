"""Image bookkeeping for ``LabelStore``: scans (new / moved / changed files) and unreadable files.

>>> validate_scan([("a.png", "h1", (4, 6))], origin="scan")
{'a.png': ('h1', (4, 6))}
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pixlabel.errors import InputError
from pixlabel.store.models import HistoryRow, ImageRow, table
from pixlabel.store.results import SyncResult
from pixlabel.store.sqlhelp import advisory_lock, bulk_insert, in_chunks

ScanRow = tuple[str, str] | tuple[str, str, tuple[int, int] | None]


def validate_scan(rows: Iterable[ScanRow], *, origin: str) -> dict[str, tuple[str, tuple[int, int] | None]]:
    """``{path: (content_hash, (h, w) or None)}`` from scan rows; malformed rows and repeats are refused."""
    out: dict[str, tuple[str, tuple[int, int] | None]] = {}
    for n, row in enumerate(rows):
        if not isinstance(row, tuple | list) or len(row) not in (2, 3):
            raise InputError(f"{origin} row {n}: expected (path, content_hash[, (h, w)]), got {row!r}")
        path, content_hash = row[0], row[1]
        size = row[2] if len(row) == 3 else None
        if not isinstance(path, str) or not path:
            raise InputError(f"{origin} row {n}: path must be a non-empty string, got {path!r}")
        if not isinstance(content_hash, str) or not content_hash:
            raise InputError(f"{origin} row {n} ({path}): content_hash must be a non-empty string")
        if size is not None and not (
            isinstance(size, tuple | list) and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise InputError(f"{origin} row {n} ({path}): image size must be (h, w) positive ints, "
                             f"got {size!r}")
        if path in out:
            raise InputError(f"{origin} row {n}: path {path!r} appears twice in one scan")
        out[path] = (content_hash, None if size is None else (int(size[0]), int(size[1])))
    return out


def sync(session: Session, scan: dict[str, tuple[str, tuple[int, int] | None]], *, actor: str,
         now: _dt.datetime) -> SyncResult:
    """Bring the ``images`` table in line with a full scan. See ``LabelStore.sync_images``."""
    advisory_lock(session, "pixlabel.sync_images")  # two scans at once would both claim the same move
    known = {r.path: r for r in session.execute(
        select(ImageRow.id, ImageRow.path, ImageRow.content_hash, ImageRow.height, ImageRow.width))}
    # Known images missing from this scan, by content: a new path with the same content is that file, moved.
    absent: dict[str, list[Any]] = {}
    for path in sorted(set(known) - set(scan)):
        if known[path].content_hash is not None:
            absent.setdefault(known[path].content_hash, []).append(known[path])
    n_absent = len(set(known) - set(scan))
    counts = {"new": 0, "moved": 0, "unchanged": 0, "changed": 0}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    touched: list[int] = []
    history: list[dict[str, Any]] = []
    for path in sorted(scan):
        content_hash, size = scan[path]
        old = known.get(path)
        if old is None and absent.get(content_hash):
            old = absent[content_hash].pop(0)
            counts["moved"] += 1
            history.append(_image_history(old.id, {"path": old.path}, {"path": path}, "moved", actor, now))
        elif old is None:
            h, w = size if size is not None else (None, None)
            inserts.append({"path": path, "content_hash": content_hash, "height": h, "width": w,
                            "error": None, "first_seen": now, "last_seen": now})
            counts["new"] += 1
            continue
        elif old.content_hash == content_hash:
            counts["unchanged"] += 1
        elif old.content_hash is None:  # known only as unreadable until now
            counts["new"] += 1
        else:
            counts["changed"] += 1
            history.append(_image_history(old.id, {"content_hash": old.content_hash},
                                          {"content_hash": content_hash}, "content changed", actor, now))
        h, w = size if size is not None else (old.height, old.width)
        if (old.path, old.content_hash, old.height, old.width) == (path, content_hash, h, w):
            touched.append(old.id)  # the common case on a re-scan: one statement per thousand images
        else:
            updates.append({"id": old.id, "path": path, "content_hash": content_hash, "height": h, "width": w,
                            "error": None, "last_seen": now})
    # Ascending ids, like lock_images, so concurrent writers never wait on each other in a cycle.
    for condition in in_chunks(session, ImageRow.id, sorted(touched)):
        session.execute(update(ImageRow).where(condition).values(last_seen=now, error=None)
                        .execution_options(synchronize_session=False))
    if updates:
        session.execute(update(ImageRow), sorted(updates, key=lambda u: u["id"]))
    bulk_insert(session.connection(), table(ImageRow), inserts)
    bulk_insert(session.connection(), table(HistoryRow), history)
    return SyncResult(missing=n_absent - counts["moved"], **counts)


def record_errors(session: Session, errors: dict[str, str], *, now: _dt.datetime) -> None:
    """Set ``images.error`` for each path, adding a row (without content hash) for paths not seen yet."""
    if not errors:
        return
    advisory_lock(session, "pixlabel.sync_images")
    known: dict[str, int] = {}
    for condition in in_chunks(session, ImageRow.path, list(errors)):
        rows = session.execute(select(ImageRow.id, ImageRow.path).where(condition))
        known.update((r.path, r.id) for r in rows)
    updates: list[dict[str, Any]] = [{"id": known[p], "error": errors[p], "last_seen": now}
                                     for p in sorted(errors, key=lambda p: known.get(p, 0)) if p in known]
    inserts = [{"path": p, "content_hash": None, "height": None, "width": None, "error": reason,
                "first_seen": now, "last_seen": now} for p, reason in errors.items() if p not in known]
    if updates:
        session.execute(update(ImageRow), updates)
    if inserts:
        session.execute(insert(ImageRow), inserts)


def _image_history(image_id: int, old: dict[str, Any], new: dict[str, Any], reason: str, actor: str,
                   now: _dt.datetime) -> dict[str, Any]:
    return {"image_id": image_id, "label_id": None, "actor": actor, "at": now, "old": old, "new": new,
            "reason": reason}
