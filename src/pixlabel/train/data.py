"""Labeled examples from labels.csv or any foundation format, decoded once into a uint8 tensor cache.

``read_examples`` turns a labels file (or an ImageFolder) into ``Example`` rows after the label filters;
``decode_examples`` decodes each image once (bad files go to the error list, never stop the run) into
``(N, C, h, w)`` uint8, so epochs never touch PNGs again. Example::

    examples, errors = read_examples(Path("imgs"), Path("ws/labels.csv"), min_confidence=0.9)
    cache = decode_examples(examples, size=(28, 28), in_chans=1, errors=errors)
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.progress import progress

log = logging.getLogger("pixlabel.train")


@dataclass(frozen=True)
class Example:
    path: str            # relative to ``root`` (as written in the labels file)
    root: Path
    label: str
    weight: float = 1.0  # label confidence
    source: str = "human"

    @property
    def file(self) -> Path:
        return self.root / self.path


@dataclass(frozen=True)
class Decoded:
    examples: list[Example]  # the rows whose image decoded, in input order
    pixels: np.ndarray       # (N, C, h, w) uint8


def _format(labels: Path | None, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if labels is None:
        return "imagefolder"
    return {".csv": "csv", ".json": "coco"}.get(labels.suffix.lower(), "csv")


def read_examples(
    images: Path, labels: Path | None, *, fmt: str = "auto", min_confidence: float | None = None,
    only_human: bool = False, accepted_only: bool = False,
) -> tuple[list[Example], list[tuple[str, str]]]:
    """One ``Example`` per image with exactly one class label; ambiguous images go to the error list."""
    from pixlabel.io.convert import FORMATS

    if not images.is_dir():
        raise InputError(f"{images}: IMAGES must be a folder of images")
    if labels is not None and not labels.is_file():
        raise InputError(f"{labels}: labels file not found")
    kind = _format(labels, fmt)
    if kind in ("csv", "coco") and labels is None:
        raise InputError(f"format {kind} needs --labels FILE")
    dataset, root = FORMATS[kind].read(images, labels if kind in ("csv", "coco") else None)
    origin = str(labels if labels is not None else images)
    kept = [lab for lab in dataset.labels
            if (min_confidence is None or lab.confidence >= min_confidence)
            and (not only_human or lab.source == "human")
            and (not accepted_only or lab.status == "accepted")]
    if not dataset.labels:
        raise InputError(f"{origin}: no labeled images found (expected rows with path,label"
                         f"{' or one sub-folder per class' if kind == 'imagefolder' else ''})")
    if not kept:
        raise InputError(f"{origin}: none of its {len(dataset.labels)} labels passes the filters "
                         f"(min_confidence={min_confidence}, only_human={only_human}, accepted_only={accepted_only})")
    by_image: dict[str, list] = {}
    for lab in kept:
        by_image.setdefault(lab.image, []).append(lab)
    examples: list[Example] = []
    errors: list[tuple[str, str]] = []
    for path, labs in by_image.items():
        names = sorted({lab.label for lab in labs})
        if len(names) > 1:
            errors.append((path, f"ambiguous: {len(names)} different labels ({', '.join(names[:4])}); skipped"))
            continue
        examples.append(Example(path, root, names[0], float(min(lab.confidence for lab in labs)),
                                str(labs[0].source)))
    return examples, errors


def check_classes(examples: list[Example], *, origin: str) -> tuple[str, ...]:
    """Sorted class names; one class is an error, a class with a single example a warning."""
    counts = Counter(e.label for e in examples)
    if len(counts) < 2:
        raise InputError(f"{origin}: a classifier needs at least two classes; found {sorted(counts)}")
    for name, n in sorted(counts.items()):
        if n == 1:
            log.warning("class %r has only one example: it cannot be validated and will barely be learned", name)
    return tuple(sorted(counts))


def probe(examples: list[Example], *, n: int = 64) -> tuple[tuple[int, int], bool]:
    """Median (h, w) and whether every probed image is grayscale, from the first ``n`` readable images."""
    sizes, gray = [], True
    for e in examples[:n]:
        try:
            im = load_rgb(e.file)
        except ImageDecodeError:
            continue
        sizes.append((im.height, im.width))
        arr = np.asarray(im)
        gray = gray and bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
    if not sizes:
        return (0, 0), False
    h, w = np.median(np.asarray(sizes), axis=0)
    return (int(h), int(w)), gray


def to_pixels(im: Image.Image, *, size: tuple[int, int], in_chans: int) -> np.ndarray:
    """(C, h, w) uint8 exactly as ``ModelSpec.preprocess`` resizes (same mode, same filter)."""
    h, w = size
    arr = np.asarray(im.convert("L" if in_chans == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR))
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_examples(
    examples: list[Example], *, size: tuple[int, int], in_chans: int, errors: list[tuple[str, str]],
) -> Decoded:
    """Decode every image once; missing/unreadable files are appended to ``errors`` and skipped."""
    h, w = size
    pixels = np.empty((len(examples), in_chans, h, w), np.uint8)
    good: list[Example] = []
    for e in progress(examples, desc="decode", unit="img"):
        if not e.file.is_file():
            errors.append((e.path, "missing: no such file"))
            continue
        try:
            im = load_rgb(e.file, draft=(w, h))
        except ImageDecodeError as exc:
            errors.append((e.path, exc.reason))
            continue
        pixels[len(good)] = to_pixels(im, size=size, in_chans=in_chans)
        good.append(e)
    return Decoded(good, pixels[: len(good)])


def no_image_matched(examples: list[Example], decoded: Decoded, *, origin: str) -> None:
    if examples and not decoded.examples:
        first = examples[0]
        raise InputError(f"{origin}: none of its {len(examples)} labeled rows matches a readable image "
                         f"(first: {first.path!r} under {first.root}); are IMAGES and --labels from the same "
                         "dataset?")
