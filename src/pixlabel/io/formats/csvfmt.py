"""labels.csv: one row per label, ``path,label,confidence,source,status`` first (the export contract).

Named ``csvfmt`` so it does not shadow the standard ``csv`` module. Rows are numbered as a spreadsheet shows
them: the header is row 1 and the first data row is row 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import cast

from pixlabel.errors import InputError
from pixlabel.io.formats._common import fmt_num, safe_relpath, text_number
from pixlabel.records import (
    LABELS_CSV_COLUMNS,
    SOURCES,
    STATUSES,
    Box,
    Dataset,
    ImageInfo,
    Label,
    Ontology,
    Provenance,
    Source,
    Status,
)

PROVENANCE_COLUMNS: tuple[str, ...] = ("labeler", "model_version", "round", "created_at")
BOX_COLUMNS: tuple[str, ...] = ("x1", "y1", "x2", "y2", "image_width", "image_height")


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV injection");
# a file name like "=HYPERLINK(...).png" would otherwise run when a reviewer opens labels.csv.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a leading ``'`` when a spreadsheet would read it as a formula; a cell that already starts
    with ``'`` gets one more, so :func:`from_spreadsheet_safe` gives back exactly the original text.

    >>> spreadsheet_safe("=1+1"), spreadsheet_safe("cat"), spreadsheet_safe("'s-Hertogenbosch")
    ("'=1+1", 'cat', "''s-Hertogenbosch")
    """
    return "'" + cell if cell[:1] in (*FORMULA_START, "'") else cell


def from_spreadsheet_safe(cell: str) -> str:
    """The inverse of :func:`spreadsheet_safe`.

    >>> from_spreadsheet_safe("'=1+1"), from_spreadsheet_safe("''s"), from_spreadsheet_safe("'plain")
    ('=1+1', "'s", "'plain")
    """
    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1:2] in (*FORMULA_START, "'") else cell


def _csv_rows(text: str, *, origin: str) -> Iterator[list[str]]:
    """csv.reader's rows; its own errors (a bare CR inside a cell, a cell over 128 KB) as InputError."""
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{origin} line {reader.line_num}: not valid CSV ({exc})") from exc
        yield row


def parse_labels_csv(text: str, *, origin: str, ontology: Ontology | None = None) -> Dataset:
    """Parse labels.csv text. ``path`` and ``label`` columns are required, unknown columns are ignored.

    An empty ``label`` cell lists an unlabeled image. Optional columns: ``confidence`` (0–1, default 1),
    ``source`` (human/model/synthetic, default human), ``status`` (accepted/review), ``labeler``,
    ``model_version``, ``round``, ``created_at`` (ISO 8601) and a box as ``x1,y1,x2,y2`` pixels with
    ``image_width,image_height``. With an ``ontology``, aliases resolve to their class and unknown classes are
    errors. Errors name the row as a spreadsheet shows it: the header is row 1, the first data row is row 2.
    Cells escaped by :func:`spreadsheet_safe` (``'=…``) read back as written.

    >>> ds = parse_labels_csv("path,label\\ncat/1.jpg,cat\\n2.jpg,\\n", origin="labels.csv")
    >>> [(lab.image, lab.label, lab.source) for lab in ds.labels], [i.path for i in ds.images]
    ([('cat/1.jpg', 'cat', 'human')], ['cat/1.jpg', '2.jpg'])
    """
    rows = _csv_rows(text.removeprefix("\ufeff"), origin=origin)  # Excel writes a byte-order mark
    header = [h.strip() for h in next(rows, [])]
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        raise InputError(
            f"{origin} row 1: the header must name the columns path and label "
            f"(missing {', '.join(missing)}); got {', '.join(header) or 'an empty file'}"
        )
    images: dict[str, ImageInfo] = {}
    labels: list[Label] = []
    for number, cells in enumerate(rows, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line is not an image
        if len(cells) > len(header):
            raise InputError(f"{origin} row {number}: {len(cells)} cells but the header names {len(header)}")
        row = dict(zip(header, (from_spreadsheet_safe(c).strip() for c in cells), strict=False))
        where = f"{origin} row {number}"
        label = _parse_row(row, where=where, ontology=ontology)
        path = label.image if label else safe_relpath(row["path"], origin=where)
        if label and label.box:
            images.setdefault(path, ImageInfo(path, label.box.image_size))
        images.setdefault(path, ImageInfo(path))
        if label:
            labels.append(label)
    classes = ontology or Ontology.from_labels(lab.label for lab in labels)
    return Dataset(list(images.values()), labels, classes)


def _parse_row(row: Mapping[str, str], *, where: str, ontology: Ontology | None) -> Label | None:
    path = safe_relpath(row.get("path", ""), origin=where)
    name = row.get("label", "")
    if not name:
        return None
    if ontology is not None:
        try:
            name = ontology.resolve(name)
        except KeyError:
            raise InputError(f"{where}: {ontology.describe_unknown(name)}") from None
    confidence = _number(row, "confidence", where=where, default=1.0)
    if not 0.0 <= confidence <= 1.0:
        raise InputError(f"{where}: confidence must be a number from 0 to 1, got {row['confidence']!r}")
    source = row.get("source") or "human"
    if source not in SOURCES:
        raise InputError(f"{where}: source must be one of {', '.join(SOURCES)}, got {source!r}")
    status = row.get("status") or "accepted"
    if status not in STATUSES:
        raise InputError(f"{where}: status must be one of {', '.join(STATUSES)}, got {status!r}")
    round_ = _number(row, "round", where=where, default=0.0)
    if round_ < 0 or not round_.is_integer():
        raise InputError(f"{where}: round must be a whole number >= 0, got {row['round']!r}")
    extra: dict[str, dt.datetime] = {}
    if row.get("created_at"):
        extra["created_at"] = _timestamp(row["created_at"], where=where)
    provenance = Provenance(
        source=cast(Source, source),
        labeler=row.get("labeler") or "",
        model_version=row.get("model_version") or "",
        round=int(round_),
        **extra,
    )
    return Label(path, name, confidence, provenance, cast(Status, status), box=_box(row, where=where))


def _number(row: Mapping[str, str], column: str, *, where: str, default: float) -> float:
    text = row.get(column) or ""
    if not text:
        return default
    value = text_number(text)
    if value is None:
        raise InputError(f"{where}: {column} must be a number, got {text!r}")
    return value


def _timestamp(text: str, *, where: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: created_at must be an ISO 8601 time like 2024-05-01T12:00:00+00:00, "
                         f"got {text!r}") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)  # naive times are taken as UTC


def _box(row: Mapping[str, str], *, where: str) -> Box | None:
    cells = [row.get(c) or "" for c in BOX_COLUMNS]
    if not any(cells[:4]):
        return None
    values = [text_number(c) for c in cells]
    if any(v is None for v in values):
        bad = [f"{c}={t!r}" for c, t, v in zip(BOX_COLUMNS, cells, values, strict=True) if v is None]
        raise InputError(f"{where}: a box needs numbers in {', '.join(BOX_COLUMNS)}; got {', '.join(bad)}")
    x1, y1, x2, y2, width, height = (float(v or 0.0) for v in values)
    if width <= 0 or height <= 0 or not width.is_integer() or not height.is_integer():
        raise InputError(f"{where}: image_width and image_height must be whole numbers > 0, "
                         f"got {width:g} and {height:g}")
    if x2 < x1 or y2 < y1:
        raise InputError(f"{where}: box corners out of order: x1={x1}, y1={y1}, x2={x2}, y2={y2}")
    return Box(x1, y1, x2, y2, image_size=(int(height), int(width)))


def format_labels_csv(labels: Iterable[Label], *, images: Iterable[ImageInfo] = ()) -> str:
    """labels.csv text: the contract columns, provenance columns, box columns when any label has a box, then
    one column per label attribute name when any label has attributes (an OCR transcript is ``text``; a name
    that is already a column gets an ``attr_`` prefix). Attribute columns are written, not read back.

    ``images`` without labels are listed with an empty label so an unlabeled image survives a round trip.
    Cells a spreadsheet would run as formulas are escaped (:func:`spreadsheet_safe`); the reader undoes it.

    >>> print(format_labels_csv([Label("a.jpg", "cat")]).splitlines()[1].rsplit(",", 1)[0])
    a.jpg,cat,1.000000,human,accepted,human,,0
    """
    labels = list(labels)
    with_boxes = any(lab.box for lab in labels)
    columns = [*LABELS_CSV_COLUMNS, *PROVENANCE_COLUMNS, *(BOX_COLUMNS if with_boxes else ())]
    names = sorted({k for lab in labels for k in lab.attributes})
    columns += [f"attr_{k}" if k in columns else k for k in names]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for lab in labels:
        p = lab.provenance
        row = [lab.image, lab.label, f"{lab.confidence:.6f}", p.source, lab.status,
               p.labeler, p.model_version, str(p.round), p.created_at.isoformat()]
        if lab.box:
            h, w = lab.box.image_size
            row += [fmt_num(v) for v in (lab.box.x1, lab.box.y1, lab.box.x2, lab.box.y2)] + [str(w), str(h)]
        elif with_boxes and names:
            row += [""] * len(BOX_COLUMNS)  # keep the attribute cells under their headers
        if names:
            row += [str(lab.attributes.get(k, "")) for k in names]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    labelled = {lab.image for lab in labels}
    for info in images:
        if info.path not in labelled:
            writer.writerow([spreadsheet_safe(info.path)] + [""] * (len(columns) - 1))
    return out.getvalue()


def read_labels_csv(path: Path | str, *, ontology: Ontology | None = None) -> Dataset:
    """Read a labels.csv file (UTF-8, optionally with a byte-order mark); see :func:`parse_labels_csv`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read labels CSV: {exc}") from exc
    return parse_labels_csv(text, origin=str(path), ontology=ontology)


def write_labels_csv(labels: Iterable[Label], path: Path | str, *, images: Iterable[ImageInfo] = ()) -> None:
    """Write :func:`format_labels_csv` output to ``path`` (UTF-8), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_labels_csv(labels, images=images), encoding="utf-8")
