"""Tiny real-pixel items for detection tests: filled discs and bars on 28x28, two classes."""

from __future__ import annotations

import numpy as np

from pixlabel.datasets import ArrayDataset


def shape_items(n: int = 40) -> ArrayDataset:
    """Bright filled squares/discs of two classes on a 28x28 canvas: real pixels, known shapes."""
    imgs = np.zeros((n, 28, 28), np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    labels = np.arange(n) % 2
    for i, k in enumerate(labels):
        imgs[i] = 255 * (((yy - 14) ** 2 + (xx - 14) ** 2 < 100) if k else ((abs(yy - 14) < 9) & (abs(xx - 14) < 6)))
    return ArrayDataset("shapes", imgs, labels, ("disc", "bar"))
