"""Mask geometry: compressed RLE, area and bounding box of polygon or RLE masks (pycocotools), and masks as
one outline polygon for formats that store one per object (scikit-image contours)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as cocomask

from pixlabel.records import Box, Label, Mask

# px an outline may move when simplified: 0.5 already cuts small shapes (a 5x5 square rasterises back at IoU 0.92)
OUTLINE_TOLERANCE = 0.25


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


def bitmap_mask(bitmap: np.ndarray) -> Mask:
    """A ``(h, w)`` 0/1 array as an RLE :class:`Mask` (compressed COCO RLE, JSON-ready)."""
    size = (int(bitmap.shape[0]), int(bitmap.shape[1]))
    rle = cocomask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
    return Mask(size, rle=compress_rle(rle, size))


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


def mask_bitmap(mask: Mask) -> np.ndarray:
    """The mask as a ``(h, w)`` uint8 array of 0/1, polygons rasterised the way COCO evaluates them."""
    return np.asarray(cocomask.decode(_rle(mask)), dtype=np.uint8)


def mask_outlines(bitmap: np.ndarray, *, tolerance: float = OUTLINE_TOLERANCE) -> list[np.ndarray]:
    """Every boundary loop of a ``(h, w)`` bitmap, the outline of each part and of each hole, largest first.

    Each loop is a ``(P, 2)`` array of ``x, y`` in COCO pixel coordinates (pixel ``i`` spans ``[i, i+1]``).
    Marching squares traces the boundary halfway between inside and outside pixel centres, so the loops
    rasterise back to the same pixels even for small objects, where an outline through the boundary pixels'
    centres (OpenCV's ``findContours``) loses half a pixel all round (IoU 0.70 on a radius-3 disc, 1.0 here).
    Douglas-Peucker then drops vertices that move a loop by less than ``tolerance`` px. Diagonal neighbours
    belong to one part. An empty bitmap has no loops.

    >>> [o.tolist() for o in mask_outlines(np.array([[0, 0, 0], [0, 1, 1], [0, 1, 1]]))]
    [[[2.5, 3.0], [1.5, 3.0], [1.0, 2.5], [1.0, 1.5], [1.5, 1.0], [2.5, 1.0], [3.0, 1.5], [3.0, 2.5]]]
    """
    from skimage import measure  # imported here: reading and writing boxes does not need it

    rows, cols = np.nonzero(bitmap)
    if not len(rows):
        return []
    top, left = rows.min(), cols.min()
    crop = np.pad(bitmap[top : rows.max() + 1, left : cols.max() + 1], 1).astype(np.float32)  # padded: loops close
    found: list[tuple[float, np.ndarray]] = []
    for rows_cols in measure.find_contours(crop, 0.5, fully_connected="high"):
        simple = measure.approximate_polygon(rows_cols, tolerance)
        rows_cols = (simple if len(simple) > 3 else rows_cols)[:-1]  # closed: the last point repeats the first
        xy = rows_cols[:, ::-1] + np.array([left, top]) - 0.5  # crop and padding undone, pixel centre -> edge
        x, y = xy[:, 0], xy[:, 1]
        found.append((abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2, xy))  # shoelace area
    return [loop for _, loop in sorted(found, key=lambda t: -t[0])]


def merge_outlines(outlines: Sequence[np.ndarray]) -> np.ndarray:
    """One ``(P, 2)`` ring visiting every outline, for formats that allow one polygon per object (YOLO-seg).

    Ultralytics' convention for multi-part COCO masks (``merge_multi_segment`` in its converter): parts are
    joined by zero-width bridges between their closest points, walked there and back. Here each outline is
    spliced in turn into the ring built so far at the pair of vertices closest to it; nothing is dropped.
    A bridge crosses no area, so under the even-odd fill rule of pycocotools and of OpenCV's ``fillPoly``
    (which Ultralytics rasterises with) the ring fills the parts and leaves the holes of :func:`mask_outlines`
    empty, where Ultralytics' own converter fills holes.

    >>> merge_outlines([np.array([[0, 0], [2, 0], [2, 2]]), np.array([[5, 5], [6, 5], [6, 6]])]).tolist()
    [[0, 0], [2, 0], [2, 2], [5, 5], [6, 5], [6, 6], [5, 5], [2, 2]]
    """
    from scipy.spatial import cKDTree

    if not outlines:
        raise ValueError("merge_outlines needs at least one outline")
    ring = np.asarray(outlines[0])
    for outline in outlines[1:]:
        part = np.asarray(outline)
        distance, nearest = cKDTree(ring).query(part)  # (M,): each part vertex to its closest ring vertex
        j = int(np.argmin(distance))
        i = int(nearest[j])
        ring = np.concatenate([ring[: i + 1], np.roll(part, -j, axis=0), part[j : j + 1], ring[i:]])
    return ring


def mask_polygon(mask: Mask, *, tolerance: float = OUTLINE_TOLERANCE) -> tuple[float, ...] | None:
    """The whole mask as one flat ``x0, y0, x1, y1, …`` polygon in pixels, or None when it has no pixels.

    A single polygon is kept as it is; several polygons, or the parts and holes of an RLE mask, are merged
    into one ring (:func:`merge_outlines`).
    """
    if mask.polygons:
        outlines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in mask.polygons]
        if len(outlines) == 1:
            return tuple(float(v) for v in mask.polygons[0])
    else:
        outlines = mask_outlines(mask_bitmap(mask), tolerance=tolerance)
        if not outlines:
            return None
    return tuple(float(v) for v in merge_outlines(outlines).ravel())
