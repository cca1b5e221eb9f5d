"""Mask geometry through pycocotools: compressed RLE, area and bounding box of polygon or RLE masks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycocotools import mask as cocomask

from pixlabel.records import Box, Label, Mask


def compress_rle(rle: Mapping[str, Any], image_size: tuple[int, int]) -> dict[str, Any]:
    """COCO RLE with list counts (uncompressed) or string counts, as ``{"size": [h, w], "counts": str}``.

    String counts keep the mask JSON-ready and small.

    >>> compress_rle({"size": [2, 2], "counts": [1, 2, 1]}, (2, 2))
    {'size': [2, 2], 'counts': '121'}
    """
    h, w = image_size
    counts = rle["counts"]
    if isinstance(counts, list):
        encoded = cocomask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        counts = encoded["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [h, w], "counts": counts}


def _rle(mask: Mask) -> dict[str, Any]:
    h, w = mask.image_size
    if mask.rle is not None:
        rle = compress_rle(mask.rle, mask.image_size)
        return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    merged: dict[str, Any] = cocomask.merge(cocomask.frPyObjects([list(p) for p in mask.polygons], h, w))
    return merged


def mask_area(mask: Mask) -> float:
    """Pixel count of the mask as COCO evaluates it (polygons are rasterised first)."""
    return float(cocomask.area(_rle(mask)))


def mask_box(mask: Mask) -> Box:
    """Tight box around the mask: exact polygon bounds, or the pixel bounds of an RLE."""
    if mask.polygons:
        xs = [x for poly in mask.polygons for x in poly[0::2]]
        ys = [y for poly in mask.polygons for y in poly[1::2]]
        return Box(min(xs), min(ys), max(xs), max(ys), image_size=mask.image_size)
    x, y, w, h = (float(v) for v in cocomask.toBbox(_rle(mask)))
    return Box.from_xywh(x, y, w, h, image_size=mask.image_size)


def label_box(label: Label) -> Box | None:
    """The label's box, else the box around its mask, else None for a class-only label."""
    if label.box is not None:
        return label.box
    return mask_box(label.mask) if label.mask is not None else None
