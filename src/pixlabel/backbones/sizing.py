"""The backbone's input size from the images themselves, read from file headers only (no decoding).

Small images (28-px scans, icons) gain nothing from being blown up to the backbone's native 224 px but cost
5x the time; large photos and artwork lose detail at a small size. The rule: the median shorter side of a
sample of the folder, rounded up to a multiple of 32, clamped to ``[SMALL_SIZE, native]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SMALL_SIZE = 96  # the floor: measured the best speed/accuracy point for 28-px images (Fashion-MNIST, MNIST)
NATIVE_SIZE = 224  # what the ImageNet backbones were trained at; larger costs more and is not measured better
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
    """>>> [size_for_short_side(s) for s in (8, 28, 100, 150, 600)]
    [96, 96, 128, 160, 224]
    """
    if not np.isfinite(short_side):
        return small
    return int(min(native, max(small, 32 * int(np.ceil(short_side / 32)))))


def choose_image_size(paths: Sequence[Path], *, seed: int = 0, native: int = NATIVE_SIZE) -> SizeChoice:
    """Median shorter side of up to ``SAMPLE`` evenly spread files' headers -> :func:`size_for_short_side`."""
    from PIL import Image, UnidentifiedImageError

    step = max(1, len(paths) // SAMPLE)
    sides = []
    for p in list(paths)[::step][:SAMPLE]:
        try:
            with Image.open(p) as im:  # lazy: reads the header, decodes nothing
                sides.append(min(im.size))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):  # unreadable: ingest reports it
            continue
        except Image.DecompressionBombError:
            sides.append(10**5)  # huge: certainly "large"
    med = float(np.median(sides)) if sides else float("nan")
    return SizeChoice(size_for_short_side(med, native=native), med, len(sides))
