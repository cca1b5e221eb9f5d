"""The backbone's input size from the images themselves, read from file headers only (no decoding).

Measured on the suite (bench/suite.py, lite0): tiny scans (28-px Fashion-MNIST and MNIST, 8-px digits) are
labeled well at 96 px, the measured speed/accuracy point for 28-px images; everything else gains from the
backbone's native 224 px, even small files. The baselines on the same features, 96 -> 224 px at 5 and 10
labels/class (bench/out/suite_before_96px.jsonl -> suite_colour_final.json): Oxygen icons (22-256 px, median
48) +7 to +12 points, openclipart (median 400+ px) +3 to +10. The rule: 96 px when the
median shorter side of a sample of the folder is at most ``TINY_SIDE``, else native.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SMALL_SIZE = 96  # measured the best speed/accuracy point for 28-px images (Fashion-MNIST, MNIST)
NATIVE_SIZE = 224  # what the ImageNet backbones were trained at; larger costs more and is not measured better
TINY_SIDE = 32  # at most this (MNIST-like scans, CIFAR-size thumbnails): SMALL_SIZE
SAMPLE = 400  # headers read: enough for a stable median, a fraction of a second on any folder


@dataclass(frozen=True)
class SizeChoice:
    size: int
    median_short_side: float  # nan when no header could be read
    sampled: int

    def describe(self) -> str:
        if self.sampled == 0:
            return f"image size {self.size} px (no image header could be read to choose one)"
        return (f"image size {self.size} px, from the median shorter side {self.median_short_side:.0f} px of "
                f"{self.sampled} images (--image-size sets it)")


def size_for_short_side(short_side: float, *, small: int = SMALL_SIZE, native: int = NATIVE_SIZE) -> int:
    """Backbone input size for a folder whose median shorter side is ``short_side`` pixels.

    >>> [size_for_short_side(s) for s in (8, 28, 32, 48, 600)]
    [96, 96, 96, 224, 224]
    """
    if not np.isfinite(short_side) or short_side <= TINY_SIDE:
        return small
    return native


def choose_image_size(paths: Sequence[Path], *, seed: int = 0, native: int = NATIVE_SIZE) -> SizeChoice:
    """Median shorter side of up to ``SAMPLE`` evenly spread files' headers -> :func:`size_for_short_side`."""
    from PIL import Image, UnidentifiedImageError

    step = max(1, len(paths) // SAMPLE)
    sides = []
    for p in list(paths)[::step][:SAMPLE]:
        try:
            with warnings.catch_warnings():  # a huge header is only measured here; ingest guards decoding
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(p) as im:  # lazy: reads the header, decodes nothing
                    sides.append(min(im.size))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):  # unreadable: ingest reports it
            continue
        except Image.DecompressionBombError:
            sides.append(10**5)  # huge: certainly "large"
    med = float(np.median(sides)) if sides else float("nan")
    return SizeChoice(size_for_short_side(med, native=native), med, len(sides))
