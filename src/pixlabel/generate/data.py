"""Labeled training images for the GAN: from a labels.csv (paths relative to the image folder) or from an
ImageFolder (one sub-folder per class), decoded safely and resized consistently.

Every image is center-cropped to a square and resized to ``image_size`` with the same filter, whatever its
original size or mode, so a folder of mixed sizes yields one consistent array. Images are kept grey (one
channel) when every image is grey. A file that cannot be decoded is listed in ``errors`` and skipped.

>>> data = load_labeled(Path("photos"), Path("photos/labels.csv"), image_size=32)  # doctest: +SKIP
>>> data.images.shape, data.classes  # doctest: +SKIP
((1200, 3, 32, 32), ('cat', 'dog'))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats.csvfmt import read_labels_csv
from pixlabel.io.formats.imagefolder import read_imagefolder
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.progress import progress

log = logging.getLogger(__name__)


@dataclass
class LabeledImages:
    images: np.ndarray  # (N, C, S, S) uint8, C = 1 when every image is grey
    labels: np.ndarray  # (N,) class index into ``classes``
    classes: tuple[str, ...]  # sorted class names
    paths: list[str]  # relative to the image folder
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of skipped files

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n[k]) for k, c in enumerate(self.classes)}


def square_resize(img: Image.Image, size: int) -> np.ndarray:
    """Center-crop to a square, resize to ``size`` (bilinear, antialiased when shrinking); (S, S, 3) uint8."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    if (w, h) != (s, s):
        img = img.crop((left, top, left + s, top + s))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))


def read_labels(root: Path, labels: Path | None) -> list[tuple[str, str]]:
    """(relative path, class) pairs for every usable label.

    From labels.csv only ``accepted`` labels are used and ``synthetic`` ones are skipped: a GAN trained on its
    own output or on labels awaiting review would amplify its mistakes.
    """
    if labels is None:
        ds = read_imagefolder(root)
        pairs = [(lab.image, lab.label) for lab in ds.labels]
        if not pairs:
            raise InputError(f"{root}: no labeled images; pass --labels labels.csv or use one sub-folder per class")
        return pairs
    ds = read_labels_csv(labels)
    pairs = [(lab.image, lab.label) for lab in ds.labels
             if lab.status == "accepted" and lab.provenance.source != "synthetic"]
    if not pairs:
        raise InputError(f"{labels}: no accepted, non-synthetic labels to train on")
    return pairs


def load_labeled(root: Path, labels: Path | None, *, image_size: int) -> LabeledImages:
    """Decode the labeled images under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: image folder not found")
    pairs = read_labels(root, labels)
    classes = tuple(sorted({c for _, c in pairs}))
    index = {c: k for k, c in enumerate(classes)}
    seen: set[str] = set()
    arrays: list[np.ndarray] = []
    ys: list[int] = []
    paths: list[str] = []
    errors: list[tuple[str, str]] = []
    for rel, cls in progress(pairs, desc="read images", unit="img"):
        if rel in seen:  # a second label on the same image (multi-label / detection data): use the first
            continue
        seen.add(rel)
        try:
            arr = square_resize(load_rgb(root / rel, draft=(image_size, image_size)), image_size)
        except ImageDecodeError as exc:  # every way a file can be unusable; anything else is a bug and surfaces
            errors.append((rel, exc.reason))
            continue
        arrays.append(arr)
        ys.append(index[cls])
        paths.append(rel)
    if not arrays:
        raise InputError(f"{root}: none of the {len(pairs)} labeled images could be read (see errors.csv)")
    stack = np.stack(arrays)  # (N, S, S, 3)
    grey = bool((stack[..., 0] == stack[..., 1]).all() and (stack[..., 1] == stack[..., 2]).all())
    images = np.ascontiguousarray((stack[..., :1] if grey else stack).transpose(0, 3, 1, 2))
    if errors:
        log.warning("%d labeled image(s) could not be read and were skipped", len(errors))
    return LabeledImages(images, np.asarray(ys, np.int64), classes, paths, errors)
