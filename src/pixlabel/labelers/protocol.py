"""The labeler contract (sklearn-style): ``__init__`` stores settings, ``fit`` does the work,
learned state ends in ``_``.

Labelers here are transductive: they see the whole pool (labeled + unlabeled) and leave ``probs_`` ``(N, K)``
for every pool item. They do no file I/O — the pipeline hands them arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Pool:
    """Everything a labeler may look at. ``thumbs`` feed in-domain representation learning."""

    embeddings: np.ndarray  # (N, D) float32 backbone features
    thumbs: np.ndarray | None = None  # (N, t, t, 3) uint8
    seed: int = 0

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


@runtime_checkable
class Labeler(Protocol):
    name: str
    probs_: np.ndarray  # (N, K), rows sum to 1

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> Labeler:
        """``labeled_idx`` (M,) pool rows with known labels ``y`` (M,) in ``0..n_classes-1``."""
        ...


def check_fit_args(pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    if len(labeled_idx) != len(y):
        raise ValueError(f"labeled_idx has {len(labeled_idx)} rows but y has {len(y)}")
    if len(labeled_idx) and (labeled_idx.min() < 0 or labeled_idx.max() >= len(pool)):
        raise ValueError("labeled_idx out of range of the pool")
    missing = sorted(set(range(n_classes)) - set(np.asarray(y).tolist()))
    if missing:
        raise ValueError(f"classes without any labeled example: {missing}")


def scores_to_probs(scores: np.ndarray, *, sharpness: float = 1.0) -> np.ndarray:
    """Softmax over per-class scores standardised per class — turns graph potentials into a distribution.
    Calibration later maps these to honest probabilities; here we only need a sensible ranking."""
    z = scores / (scores.std(axis=0, keepdims=True) + 1e-12) * sharpness  # (N, K)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
