"""Label-noise checks: which human labels look wrong given out-of-fold model probabilities.

``pred_probs`` must be out-of-fold (each row predicted by a model that did not train on that item),
otherwise the model has memorised the label and nothing looks suspicious.
"""

from __future__ import annotations

import warnings

import numpy as np
from cleanlab.filter import find_label_issues
from numpy.typing import ArrayLike, NDArray

from pixlabel.trust._checks import as_labels, as_probs


def flag_label_issues(
    labels: ArrayLike, pred_probs: ArrayLike, *, fallback_threshold: float = 0.5
) -> NDArray[np.int64]:
    """Indices of likely-wrong labels, most suspicious (lowest P(given label)) first.

    Uses cleanlab's confident learning (``find_label_issues``, ranked by self-confidence). Label sets
    with fewer than two distinct classes go to :func:`self_confidence_issues` with
    ``fallback_threshold`` instead: cleanlab raises ``ValueError`` on them, except when the one class
    is 0, where it runs and flags nothing; checking first treats both the same. Classes with very few
    examples do not crash cleanlab, it just declines to prune them (their out-of-fold probabilities are
    unreliable anyway).

    >>> labels = np.array([0, 0, 0, 1, 1, 1])
    >>> probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.1, .9], [.3, .7]])
    >>> flag_label_issues(labels, probs).tolist()
    [2]
    """
    probs = as_probs(pred_probs, name="pred_probs")
    y = as_labels(labels, n=probs.shape[0], k=probs.shape[1])
    if y.size == 0 or probs.shape[1] < 2:
        return np.zeros(0, dtype=np.int64)
    if np.unique(y).size < 2:
        return self_confidence_issues(y, probs, threshold=fallback_threshold)
    with warnings.catch_warnings():
        # cleanlab warns per small class that it may miss issues there; documented above, and on a
        # 10-per-class seed set it would print one warning per class on every run.
        warnings.filterwarnings("ignore", message="May not flag all label issues")
        found = find_label_issues(
            y,
            probs,
            return_indices_ranked_by="self_confidence",
            n_jobs=1,  # shared CPUs: no process pool
        )
    return np.asarray(found, dtype=np.int64)


def self_confidence_issues(
    labels: ArrayLike, pred_probs: ArrayLike, *, threshold: float = 0.5
) -> NDArray[np.int64]:
    """Items whose given label has probability below ``threshold`` *and* is not the model's top class.

    The fallback for label sets cleanlab refuses (one distinct class). Requiring a different top class
    keeps a merely uncertain prediction that agrees with the label from being flagged.
    Ranked by self-confidence (``pred_probs[i, labels[i]]``), lowest first; ties by index.

    >>> self_confidence_issues([0, 0, 0], [[.9, .1], [.2, .8], [.45, .55]]).tolist()
    [1, 2]
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold: expected a value in (0, 1], got {threshold}")
    probs = as_probs(pred_probs, name="pred_probs")
    y = as_labels(labels, n=probs.shape[0], k=probs.shape[1])
    self_conf = probs[np.arange(y.size), y]
    disagrees = probs.argmax(axis=1) != y
    flagged = np.flatnonzero((self_conf < threshold) & disagrees)
    return flagged[np.argsort(self_conf[flagged], kind="stable")].astype(np.int64)
