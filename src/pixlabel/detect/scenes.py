"""Detection scenes from real images: 28×28 items (Fashion-MNIST or MNIST) pasted on varied backgrounds.

Each scene has 1–``max_objects`` items, each scaled, tinted and alpha-blended by its own intensity onto a
procedural background (gradient, blotchy noise, stripes or checks, plus sensor noise). Truth is exact: the
box is the tight box of the item's visible pixels and the mask those pixels minus anything pasted over them.
Used by the demo, the benchmark and the tests (``make_scenes(..., n=20)`` takes well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as cocomask

from pixlabel.datasets import ArrayDataset
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology

ALPHA_EDGE = 0.25  # an item pixel is "visible" (box, mask) where its alpha exceeds this


@dataclass(frozen=True)
class SceneSpec:
    size: int = 128  # scenes are size × size RGB
    min_objects: int = 1
    max_objects: int = 4
    min_item: int = 28  # item side in pixels after scaling
    max_item: int = 56
    max_overlap: float = 0.15  # largest IoU allowed between two items' boxes


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float in [0, 1]: one of four procedural families."""
    kind = rng.integers(4)
    c0, c1 = rng.random(3), rng.random(3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:  # linear gradient at a random angle
        a = rng.random() * 2 * np.pi
        t = (np.cos(a) * xx + np.sin(a) * yy)
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
    elif kind == 1:  # blotchy low-frequency noise
        coarse = rng.random((6, 6)).astype(np.float32)
        blotches = Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        t = np.asarray(blotches) / 255
    elif kind == 2:  # stripes
        a, period = rng.random() * np.pi, rng.uniform(6, 24)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) * size / period)
    else:  # checks
        cell = int(rng.integers(8, 33))
        t = ((np.mgrid[0:size, 0:size] // cell).sum(0) % 2).astype(float)
    bg = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    return np.clip(bg + rng.normal(0, 0.03, bg.shape), 0, 1)


def _tint(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """An RGB colour whose luminance differs clearly from the background under the item."""
    lum = float(under.mean())
    for _ in range(20):
        color = rng.random(3)
        if abs(color.mean() - lum) > 0.3:
            return color
    return np.full(3, 1.0 if lum < 0.5 else 0.0)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def render_scene(items: ArrayDataset, rng: np.random.Generator, spec: SceneSpec
                 ) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One scene: the uint8 RGB image and, per item, ``(class index, visible boolean mask)``."""
    s = spec.size
    canvas = _background(rng, s)
    placed: list[tuple[int, tuple[int, int, int, int], np.ndarray]] = []  # class, paste rect, full alpha
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        for _attempt in range(30):
            side = int(rng.integers(spec.min_item, spec.max_item + 1))
            x, y = (int(v) for v in rng.integers(0, s - side + 1, size=2))
            rect = (x, y, x + side, y + side)
            if all(_iou(rect, r) <= spec.max_overlap for _, r, _ in placed):
                break
        else:
            continue
        k = int(rng.integers(len(items.labels)))
        item = Image.fromarray(items.images[k]).resize((side, side), Image.Resampling.BILINEAR)
        alpha_small = np.asarray(item, dtype=np.float32) / 255.0
        if (alpha_small > ALPHA_EDGE).sum() < 4:
            continue
        alpha = np.zeros((s, s), np.float32)
        alpha[y:y + side, x:x + side] = alpha_small
        color = _tint(rng, canvas[y:y + side, x:x + side])
        canvas = canvas * (1 - alpha[..., None]) + color[None, None] * alpha[..., None]
        placed.append((int(items.labels[k]), rect, alpha))
    objects = []
    covered = np.zeros((s, s), bool)
    for cls, _rect, alpha in reversed(placed):  # later items are on top: they hide earlier ones
        visible = (alpha > ALPHA_EDGE) & ~covered
        covered |= alpha > ALPHA_EDGE
        if visible.sum() >= 4:
            objects.append((cls, visible))
    return (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8), objects[::-1]


def _mask_label(path: str, name: str, visible: np.ndarray) -> Label:
    h, w = visible.shape
    rle = cocomask.encode(np.asfortranarray(visible.astype(np.uint8)))
    x, y, bw, bh = (float(v) for v in cocomask.toBbox(rle))
    mask = Mask((h, w), rle={"size": [h, w], "counts": rle["counts"].decode("ascii")})
    return Label(path, name, box=Box.from_xywh(x, y, bw, bh, image_size=(h, w)), mask=mask)


def make_scenes(items: ArrayDataset, out: Path | str, n: int, *, seed: int = 0, spec: SceneSpec = SceneSpec(),
                prefix: str = "scene") -> Dataset:
    """Write ``n`` scenes as ``out/PREFIX_NNNNN.png`` and return their truth (boxes + RLE masks).

    Deterministic given ``seed``; existing files are overwritten so truth and pixels always agree.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images: list[ImageInfo] = []
    labels: list[Label] = []
    for i in range(n):
        pixels, objects = render_scene(items, rng, spec)
        path = f"{prefix}_{i:05d}.png"
        Image.fromarray(pixels).save(out / path)
        images.append(ImageInfo(path, (spec.size, spec.size)))
        labels.extend(_mask_label(path, items.classes[cls], visible) for cls, visible in objects)
    return Dataset(images, labels, Ontology(tuple(items.classes)))
