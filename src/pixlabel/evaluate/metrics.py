"""Classification metrics with scikit-learn: accuracy, macro-F1, per-class precision/recall/F1/support,
confusion matrix, and 15-bin ECE (:func:`pixlabel.trust.calibrate.expected_calibration_error`).

>>> m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ("a", "b"))
>>> m["accuracy"], m["confusion_matrix"]
(1.0, [[1, 0], [0, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from pixlabel.trust.calibrate import expected_calibration_error

ECE_BINS = 15


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Metrics of ``probs`` ``(N, K)`` against class indices ``y_true``; every class of the model is listed."""
    labels = list(range(len(classes)))
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
        "ece": expected_calibration_error(conf, pred == y_true, n_bins=ECE_BINS),
        "ece_bins": ECE_BINS,
        "classes": list(classes),
        "per_class": {c: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                          "support": int(support[k])} for k, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }
