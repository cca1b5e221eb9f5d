"""Simple labelers: a linear probe, and sklearn's LabelSpreading as the benchmark's floor."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from pixlabel.labelers.graph import reduce_dim
from pixlabel.labelers.protocol import Pool, check_fit_args


class ProbeLabeler:
    """Logistic regression on standardised embeddings, fitted on the labeled rows only."""

    name = "probe"

    def __init__(self, *, C: float = 0.5):
        self.C = C

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> ProbeLabeler:
        check_fit_args(pool, labeled_idx, y, n_classes)
        scaler = StandardScaler().fit(pool.embeddings)
        x = scaler.transform(pool.embeddings)
        clf = LogisticRegression(C=self.C, max_iter=2000).fit(x[labeled_idx], y)
        probs = np.zeros((len(pool), n_classes))
        probs[:, clf.classes_] = clf.predict_proba(x)
        self.probs_ = probs
        return self


class LabelSpreadingLabeler:
    """sklearn LabelSpreading (kNN kernel) on PCA-64 embeddings — the floor the other labelers must beat."""

    name = "labelspreading"

    def __init__(self, *, k: int = 10, alpha: float = 0.2):
        self.k = k
        self.alpha = alpha

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> LabelSpreadingLabeler:
        check_fit_args(pool, labeled_idx, y, n_classes)
        x = reduce_dim(pool.embeddings, dim=64, seed=pool.seed)
        target = np.full(len(pool), -1)
        target[labeled_idx] = y
        model = LabelSpreading(kernel="knn", n_neighbors=self.k, alpha=self.alpha, max_iter=100).fit(x, target)
        probs = np.zeros((len(pool), n_classes))
        probs[:, model.classes_[model.classes_ >= 0]] = model.label_distributions_
        self.probs_ = probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)
        return self
