"""Cross-validation on the seed labels: picks the labeler for ``--method auto`` and yields the held-out
predictions that calibrate its confidences."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from pixlabel.labelers.protocol import Labeler, Pool

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    name: str
    accuracy: float  # held-out accuracy on seed labels (nan when there are too few seeds to hold any out)
    heldout_idx: np.ndarray  # (M,) positions into the seed arrays
    heldout_probs: np.ndarray  # (M, K) out-of-fold probabilities

    @property
    def has_heldout(self) -> bool:
        return len(self.heldout_idx) > 0


def n_folds_for(y: np.ndarray, *, max_folds: int = 5) -> int:
    """As many folds as the rarest class allows (each fold needs one example of every class), ≤ ``max_folds``."""
    counts = np.bincount(y)
    return int(min(max_folds, counts[counts > 0].min()))


def cross_validate(
    labeler: Labeler, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int,
    name: str, max_folds: int = 5, repeats: int = 1, seed: int = 0, checkable: np.ndarray | None = None,
) -> CVResult:
    """Stratified k-fold over the seeds; the labeler sees the whole pool but only the training folds' labels.

    ``checkable`` (M,) bool: seeds that may be held out. The others (review corrections, picked because they
    were the hardest images) always train and are never scored: scoring on them would bias the accuracy
    estimate and the calibration that follows towards the hardest images."""
    check = np.arange(len(y)) if checkable is None else np.flatnonzero(checkable)
    always = np.setdiff1d(np.arange(len(y)), check)
    folds = n_folds_for(y[check], max_folds=max_folds) if len(check) else 0
    if folds < 2:
        log.warning("%s: fewer than 2 seed labels in some class: no held-out check possible", name)
        return CVResult(name, float("nan"), np.zeros(0, int), np.zeros((0, n_classes)))
    # one instance across folds: graph labelers reuse their kNN graph
    idx_out, probs_out = [], []
    for r in range(repeats):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for train_c, test_c in splitter.split(np.zeros(len(check)), y[check]):
            train, test = np.concatenate([check[train_c], always]), check[test_c]
            labeler.fit(pool, labeled_idx[train], y[train], n_classes=n_classes)
            idx_out.append(test)
            probs_out.append(labeler.probs_[labeled_idx[test]])
    heldout_idx = np.concatenate(idx_out)
    heldout_probs = np.concatenate(probs_out)
    acc = float((heldout_probs.argmax(1) == y[heldout_idx]).mean())
    return CVResult(name, acc, heldout_idx, heldout_probs)
