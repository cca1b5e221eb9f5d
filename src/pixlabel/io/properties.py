"""Per-image properties anyone can filter on: size, aspect, grey or colour, sharpness, dominant colour names.

Arrays in, a dict of JSON scalars out (``records.AttributeValue``), stored on the image in the label store
(``pixlabel ingest --properties``) and exported with it (Label Studio task data, FiftyOne sample fields, COCO
image entries).

>>> props = image_properties(np.full((20, 40, 3), (200, 30, 30), np.uint8))
>>> props["colors"], props["grey"], props["aspect"]
('red', False, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageDecodeError, ImageFile, load_rgb
from pixlabel.progress import progress
from pixlabel.records import AttributeValue

# Colour names and an sRGB anchor for each: every pixel takes the name of the nearest anchor in CIELAB, where
# distance follows perceived difference far better than in RGB.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20), "grey": (128, 128, 128), "white": (245, 245, 245), "red": (200, 30, 35),
    "orange": (240, 140, 25), "yellow": (240, 220, 45), "green": (45, 155, 60), "teal": (30, 160, 160),
    "blue": (40, 80, 205), "purple": (125, 50, 160), "pink": (240, 135, 185), "brown": (125, 80, 40),
}
MIN_SHARE = 0.10  # a colour names the image when at least this share of its pixels is nearest to it
BLURRY_BELOW = 100.0  # variance of the Laplacian at 256 px: the usual rule of thumb for "blurry"
GREY_SPREAD = 6.0  # mean per-pixel max-min channel difference (0-255) below which an image is greyscale


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return np.asarray(rgb2lab(rgb.astype(np.float64) / 255.0))


_ANCHORS_LAB: np.ndarray | None = None


def dominant_colors(rgb: np.ndarray, *, max_names: int = 3) -> list[str]:
    """Names of the palette colours covering at least ``MIN_SHARE`` of a ``(h, w, 3)`` image, most first."""
    global _ANCHORS_LAB
    if _ANCHORS_LAB is None:
        _ANCHORS_LAB = _lab(np.array([list(PALETTE.values())], np.uint8))[0]  # (P, 3)
    small = np.asarray(Image.fromarray(rgb).resize((48, 48), Image.Resampling.BOX)) if max(rgb.shape[:2]) > 48 \
        else rgb
    lab = _lab(small).reshape(-1, 3)  # (n, 3)
    nearest = np.argmin(((lab[:, None, :] - _ANCHORS_LAB[None]) ** 2).sum(-1), axis=1)
    share = np.bincount(nearest, minlength=len(PALETTE)) / len(nearest)
    names = list(PALETTE)
    return [names[i] for i in np.argsort(-share, kind="stable")[:max_names] if share[i] >= MIN_SHARE]


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image scaled to 256 px on its longer side (higher = sharper)."""
    from scipy.ndimage import laplace

    grey = Image.fromarray(rgb).convert("L")
    scale = 256 / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BILINEAR)
    return float(laplace(np.asarray(grey, np.float64)).var())


def image_properties(rgb: np.ndarray) -> dict[str, AttributeValue]:
    """``width``, ``height``, ``aspect`` (w/h), ``grey``, ``sharpness``, ``blurry`` and ``colors`` (comma-separated
    names) of an ``(h, w, 3)`` uint8 RGB image."""
    h, w = rgb.shape[:2]
    spread = float((rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)).mean())
    sharp = sharpness(rgb)
    return {"width": int(w), "height": int(h), "aspect": round(w / h, 3), "grey": spread < GREY_SPREAD,
            "sharpness": round(sharp, 1), "blurry": sharp < BLURRY_BELOW, "colors": ",".join(dominant_colors(rgb))}


def read_properties(files: Sequence[ImageFile], *, workers: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS
                    ) -> tuple[dict[str, dict[str, AttributeValue]], list[tuple[str, str]]]:
    """:func:`image_properties` of each file (decoded in ``workers`` threads) and ``(path, reason)`` for those
    that would not decode."""
    def one(f: ImageFile) -> dict[str, AttributeValue] | str:
        try:
            return image_properties(np.asarray(load_rgb(f.abs_path, max_pixels=max_pixels)))
        except ImageDecodeError as exc:
            return exc.reason

    found: dict[str, dict[str, AttributeValue]] = {}
    errors: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixlabel-properties") as pool:
        for f, result in zip(files, progress(pool.map(one, files), desc="properties", total=len(files),
                                             unit="img"), strict=True):
            if isinstance(result, str):
                errors.append((f.path, result))
            else:
                found[f.path] = result
    return found, errors
