"""Between ``records.Label`` and label-table rows, plus the JSON snapshot history rows keep.

>>> from pixlabel.records import Label
>>> snapshot(Label("a.png", "cat"))["source"]
'human'
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from pixlabel.errors import InputError
from pixlabel.records import Box, Label, Mask, Provenance


def is_class_label(label: Label) -> bool:
    """A label without box and mask labels the whole image; at most one is current per image."""
    return label.box is None and label.mask is None


def mask_to_json(mask: Mask) -> dict[str, Any]:
    rle: dict[str, Any] | None = None
    if mask.rle is not None:
        # pycocotools hands out compressed counts as bytes, which JSON cannot hold.
        rle = {k: (v.decode("ascii") if isinstance(v, bytes) else v) for k, v in mask.rle.items()}
    return {"image_size": list(mask.image_size), "polygons": [list(p) for p in mask.polygons], "rle": rle}


def mask_from_json(data: Mapping[str, Any]) -> Mask:
    h, w = data["image_size"]
    return Mask(image_size=(int(h), int(w)), polygons=tuple(tuple(p) for p in data.get("polygons") or ()),
                rle=data.get("rle"))


def snapshot(label: Label) -> dict[str, Any]:
    """What a label says, as JSON: compared to decide "unchanged" and written to history (old/new).

    ``created_at`` is left out on purpose: re-putting the same prediction later is not a change.
    ``attributes`` and ``rank`` appear only when set, so snapshots written before they existed still compare.
    """
    box = label.box
    snap: dict[str, Any] = {
        "label": label.label,
        "confidence": float(label.confidence),
        "source": label.provenance.source,
        "status": label.status,
        "labeler": label.provenance.labeler,
        "model_version": label.provenance.model_version,
        "round": int(label.provenance.round),
        "box": None if box is None else [float(box.x1), float(box.y1), float(box.x2), float(box.y2)],
        "mask": None if label.mask is None else mask_to_json(label.mask),
    }
    if label.attributes:
        snap["attributes"] = dict(label.attributes)
    if label.rank:
        snap["rank"] = int(label.rank)
    return snap


def snapshot_from_row(row: Any, *, class_name: str) -> dict[str, Any]:
    """``snapshot`` of a stored ``labels`` row without building a ``Label`` (hot path of large batches)."""
    snap: dict[str, Any] = {
        "label": class_name,
        "confidence": row.confidence,
        "source": row.source,
        "status": row.status,
        "labeler": row.labeler,
        "model_version": row.model_version,
        "round": row.round,
        "box": None if row.x1 is None else [row.x1, row.y1, row.x2, row.y2],
        "mask": None if row.mask is None else mask_to_json(mask_from_json(row.mask)),
    }
    if row.attributes:
        snap["attributes"] = dict(row.attributes)
    if row.rank:
        snap["rank"] = int(row.rank)
    return snap


def row_values(label: Label, *, image_id: int, class_id: int, run_id: int | None,
               now: _dt.datetime) -> dict[str, Any]:
    """Column values of a ``labels`` row for ``label`` (insert or update)."""
    created = label.provenance.created_at
    if created.tzinfo is None:
        raise InputError(f"label for {label.image}: provenance.created_at {created.isoformat()} "
                         "has no time zone")
    box = label.box
    return {
        "image_id": image_id,
        "class_id": class_id,
        "x1": None if box is None else float(box.x1),
        "y1": None if box is None else float(box.y1),
        "x2": None if box is None else float(box.x2),
        "y2": None if box is None else float(box.y2),
        "mask": None if label.mask is None else mask_to_json(label.mask),
        "attributes": dict(label.attributes) or None,
        "confidence": float(label.confidence),
        "source": label.provenance.source,
        "labeler": label.provenance.labeler,
        "model_version": label.provenance.model_version,
        "round": int(label.provenance.round),
        "status": label.status,
        "rank": int(label.rank),
        "created_at": created,
        "updated_at": now,
        "run_id": run_id,
    }


def label_from_row(row: Any, *, path: str, class_name: str, image_size: tuple[int, int] | None) -> Label:
    """A ``records.Label`` from a ``labels`` row (anything with its column attributes)."""
    box = None
    if row.x1 is not None:
        if image_size is None:
            raise ValueError(f"{path}: a stored box has no image size")  # put_labels always records one
        box = Box(row.x1, row.y1, row.x2, row.y2, image_size=image_size)
    return Label(
        image=path,
        label=class_name,
        confidence=row.confidence,
        provenance=Provenance(source=row.source, labeler=row.labeler, model_version=row.model_version,
                              round=row.round, created_at=row.created_at),
        status=row.status,
        box=box,
        mask=None if row.mask is None else mask_from_json(row.mask),
        attributes=dict(row.attributes or {}),
        rank=row.rank,
    )


def region_size(label: Label) -> tuple[int, int] | None:
    """The ``(h, w)`` a box or mask was drawn on, ``None`` for a class label."""
    if label.box is not None:
        return (int(label.box.image_size[0]), int(label.box.image_size[1]))
    if label.mask is not None:
        return (int(label.mask.image_size[0]), int(label.mask.image_size[1]))
    return None
