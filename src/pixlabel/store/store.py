"""``LabelStore``: the database every command reads labels from and writes labels to.

>>> import tempfile, pathlib
>>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "pixlabel.db")
>>> store.sync_images([("a.png", "hash-a", (32, 32))]).new
1
>>> store.ensure_classes(["cat", "dog"])
>>> store.set_human_label("a.png", "dog", actor="ana").source
'human'
>>> store.close()
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from pixlabel.errors import InputError
from pixlabel.io import csvout
from pixlabel.records import SOURCES, STATUSES, AttributeValue, ImageInfo, Label, Provenance, utcnow
from pixlabel.store import images, writes
from pixlabel.store.boxes import BoxReviewMixin
from pixlabel.store.convert import label_from_row
from pixlabel.store.engine import SQLITE_BEGIN, create_store_engine, database_url, migrate_to_head
from pixlabel.store.models import ClassRow, HistoryRow, ImageRow, LabelRow, RunRow, table
from pixlabel.store.queue import ReviewQueueMixin
from pixlabel.store.results import HistoryEntry, PutResult, RunInfo, SyncResult
from pixlabel.store.sqlhelp import in_chunks, insert_missing

RUN_STATUSES: tuple[str, ...] = ("finished", "failed", "interrupted")


def open_store(url_or_path: str | Path) -> LabelStore:
    """Open (creating and migrating as needed) the label store at a path (SQLite) or database URL."""
    engine = create_store_engine(database_url(url_or_path))
    try:
        migrate_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return LabelStore(engine)


class LabelStore(ReviewQueueMixin, BoxReviewMixin):
    """Images, classes, labels with provenance, runs and an audit trail, in SQLite or PostgreSQL.

    Each method is one transaction. Instances are thread-safe; several processes may share one database
    (SQLite writers queue on its lock, PostgreSQL writers lock the image rows they touch). The review
    queue's paged reads and review writes live in ``queue.py``, the box queue and box edits in ``boxes.py``.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Reads need no write lock: on SQLite they begin DEFERRED and never queue behind writers (WAL).
        self._read_engine = engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    # -- images ---------------------------------------------------------------------------------------

    def sync_images(self, images_: Iterable[images.ScanRow], *, actor: str = "pixlabel") -> SyncResult:
        """Record a full scan of ``(path, content_hash[, (h, w)])`` rows.

        New paths are added; known paths get ``last_seen`` updated (and their error cleared). A new path
        whose content hash matches a known image absent from this scan is that image moved: the row (and
        its labels) keeps its id, takes the new path, and the move is written to history.
        """
        scan = images.validate_scan(images_, origin="sync_images")
        with self._write() as session:
            return images.sync(session, scan, actor=actor, now=utcnow())

    def record_errors(self, errors: Iterable[tuple[str, str]]) -> None:
        """Remember why files could not be used: ``(path, reason)`` rows (the last reason per path wins)."""
        by_path: dict[str, str] = {}
        for n, row in enumerate(errors):
            if not (isinstance(row, tuple | list) and len(row) == 2
                    and all(isinstance(v, str) and v for v in row)):
                raise InputError(f"record_errors row {n}: expected (path, reason) non-empty strings, "
                                 f"got {row!r}")
            by_path[row[0]] = row[1]
        with self._write() as session:
            images.record_errors(session, by_path, now=utcnow())

    def errors(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file with an error, by path."""
        with self._read() as session:
            rows = session.execute(select(ImageRow.path, ImageRow.error)
                                   .where(ImageRow.error.is_not(None)).order_by(ImageRow.path))
            return [(r.path, r.error) for r in rows]

    # -- classes and runs -----------------------------------------------------------------------------

    def ensure_classes(self, names: Iterable[str]) -> None:
        """Add the classes not known yet (existing ones are left alone)."""
        names = list(names)
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise InputError(f"class names must be non-empty strings, got {bad[0]!r}")
        with self._write() as session:
            insert_missing(session, ClassRow, [{"name": n} for n in dict.fromkeys(names)], key="name")

    def classes(self) -> list[str]:
        """Class names in the order they were first added."""
        with self._read() as session:
            return list(session.execute(select(ClassRow.name).order_by(ClassRow.id)).scalars())

    def start_run(self, command: str, config: dict[str, Any]) -> int:
        """Record the start of a command with its final config (paths become strings); returns the run id."""
        if not isinstance(command, str) or not command:
            raise InputError(f"start_run: command must be a non-empty string, got {command!r}")
        if not isinstance(config, dict):
            raise InputError(f"start_run: config must be a dict, got {type(config).__name__}")
        stored = json.loads(json.dumps(config, default=str))
        with self._write() as session:
            run = RunRow(command=command, config=stored, started_at=utcnow(), status="running")
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, *, status: str = "finished",
                   stats: dict[str, Any] | None = None) -> None:
        if status not in RUN_STATUSES:
            raise InputError(f"finish_run: status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        with self._write() as session:
            run = session.get(RunRow, run_id)
            if run is None:
                raise InputError(f"finish_run: run id {run_id} is not in the label store")
            run.status, run.finished_at = status, utcnow()
            run.stats = None if stats is None else json.loads(json.dumps(stats, default=str))

    def run_info(self, run_id: int) -> RunInfo:
        with self._read() as session:
            run = session.get(RunRow, run_id)
            if run is None:
                raise InputError(f"run id {run_id} is not in the label store")
            return RunInfo(run.id, run.command, run.config, run.status, run.started_at, run.finished_at,
                           run.stats)

    # -- labels ---------------------------------------------------------------------------------------

    def put_labels(self, labels: Iterable[Label], *, run_id: int | None = None, actor: str = "pixlabel",
                   reason: str = "") -> PutResult:
        """Store labels in one transaction by the rules in ``planning.py``; every change goes to history.

        A model/synthetic class label never replaces a human one (counted in ``kept_human``); a human one
        replaces anything. A model batch of boxes/masks for an image replaces its earlier model boxes;
        human boxes stay. Images must be known (``sync_images``) and classes added (``ensure_classes``).
        """
        batch = list(labels)
        for n, x in enumerate(batch):
            if not isinstance(x, Label):
                raise InputError(f"put_labels item {n}: expected a pixlabel.records.Label, "
                                 f"got {type(x).__name__}")
        if not batch:
            return PutResult()
        with self._write() as session:
            return writes.put(session, batch, run_id=run_id, actor=actor,
                              reason=reason or (f"run {run_id}" if run_id is not None else "put_labels"),
                              force=False, now=utcnow())

    def put_reviewed(self, labels: Iterable[Label], *, reviewed: Iterable[str], actor: str,
                     reason: str = "imported review") -> PutResult:
        """Store annotations reviewed in another tool: each ``reviewed`` image gets exactly its ``labels``.

        The labels must be human. A stored region that says the same (class, geometry, attributes) stays, a
        model one becoming human; other regions of a reviewed image are deleted; a class label in the review
        replaces the stored one. Every change goes to history under ``actor``, so a re-import of the same
        review changes nothing.
        """
        batch = list(labels)
        paths = list(dict.fromkeys([*reviewed, *(x.image for x in batch)]))
        for n, x in enumerate(batch):
            if not isinstance(x, Label) or x.source != "human":
                raise InputError(f"put_reviewed item {n}: expected a human pixlabel.records.Label, got {x!r}")
        if not actor:
            raise InputError("put_reviewed: actor must name who made the change")
        if not paths:
            return PutResult()
        with self._write() as session:
            return writes.put(session, batch, run_id=None, actor=actor, reason=reason, force=False, now=utcnow(),
                              reviewed=paths)

    def images(self) -> list[ImageInfo]:
        """Readable images (path, ``(h, w)`` when known, attributes), by path; files that failed to decode are
        left out."""
        with self._read() as session:
            rows = session.execute(select(ImageRow.path, ImageRow.height, ImageRow.width, ImageRow.attributes)
                                   .where(ImageRow.error.is_(None)).order_by(ImageRow.path))
            return [ImageInfo(r.path, None if r.height is None else (r.height, r.width),
                              attributes=dict(r.attributes or {})) for r in rows]

    def set_image_attributes(self, attributes: Mapping[str, Mapping[str, AttributeValue]]) -> int:
        """Replace the attributes of each image path given (``{path: {name: scalar}}``); returns how many.

        They describe the file, not a label, so they are not written to label history.
        """
        clean: dict[str, dict[str, AttributeValue]] = {}
        for path, values in attributes.items():
            if not isinstance(values, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in values.items()):
                raise InputError(f"image attributes of {path!r} must map names to strings, numbers or booleans")
            clean[path] = dict(values)
        with self._write() as session:
            ids: dict[str, int] = {}
            for condition in in_chunks(session, ImageRow.path, list(clean)):
                ids.update((r.path, r.id) for r in session.execute(select(ImageRow.path, ImageRow.id)
                                                                   .where(condition)))
            missing = sorted(set(clean) - set(ids))
            if missing:
                raise InputError(f"unknown image(s) {', '.join(map(repr, missing[:5]))}: not in the label store")
            if ids:
                session.execute(update(ImageRow), [{"id": ids[p], "attributes": v} for p, v in clean.items()])
        return len(clean)

    def set_human_label(self, path: str, label: str, *, actor: str) -> Label:
        """A reviewer's class label for ``path``: human, accepted, confidence 1.0. The later write wins and
        every call is written to history, even one that repeats the current label."""
        if not isinstance(actor, str) or not actor:
            raise InputError(f"set_human_label: actor must name who made the change, got {actor!r}")
        new = Label(path, label, 1.0, Provenance(source="human", labeler=actor), status="accepted")
        with self._write() as session:
            writes.put(session, [new], run_id=None, actor=actor, reason="human correction", force=True,
                       now=utcnow())
        return new

    def labels(self, *, status: str | None = None, source: str | None = None) -> list[Label]:
        """Current labels, by image path then insertion order; optionally only one status/source."""
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        if source is not None and source not in SOURCES:
            raise InputError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        # Plain columns, not ORM objects: 10⁵ labels load several times faster.
        stmt = (select(*table(LabelRow).c, ImageRow.path, ImageRow.height, ImageRow.width, ClassRow.name)
                .join(ImageRow, LabelRow.image_id == ImageRow.id)
                .join(ClassRow, LabelRow.class_id == ClassRow.id)
                .order_by(ImageRow.path, LabelRow.id))
        if status is not None:
            stmt = stmt.where(LabelRow.status == status)
        if source is not None:
            stmt = stmt.where(LabelRow.source == source)
        with self._read() as session:
            return [label_from_row(row, path=row.path, class_name=row.name,
                                   image_size=None if row.height is None else (row.height, row.width))
                    for row in session.execute(stmt)]

    def history(self, path: str) -> list[HistoryEntry]:
        """Every recorded change to the image now at ``path`` and its labels, oldest first."""
        with self._read() as session:
            image_id = session.execute(select(ImageRow.id).where(ImageRow.path == path)).scalar()
            if image_id is None:
                raise InputError(f"unknown image {path!r}: not in the label store")
            rows = session.execute(select(HistoryRow).where(HistoryRow.image_id == image_id)
                                   .order_by(HistoryRow.id)).scalars()
            return [HistoryEntry(r.at, r.actor, r.reason, r.old, r.new, r.label_id) for r in rows]

    # -- export ---------------------------------------------------------------------------------------

    def export_labels_csv(self, path: Path) -> int:
        """Write every current label to ``path`` (contract columns first); returns the number of rows."""
        labels = self.labels()
        csvout.write_atomically(Path(path), csvout.format_labels_csv(labels))
        return len(labels)

    def export_errors_csv(self, path: Path) -> int:
        """Write ``path,reason`` for every unreadable file; returns the number of rows."""
        errors = self.errors()
        csvout.write_atomically(Path(path), csvout.format_errors_csv(errors))
        return len(errors)
