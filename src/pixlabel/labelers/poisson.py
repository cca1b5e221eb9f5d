"""Graph-based semi-supervised labelers on a kNN graph of embeddings (graphlearning).

Poisson learning (Calder et al., ICML 2020) stays accurate at 1–10 labels per class where Laplace
learning / label propagation degenerates; both are here so the benchmark can compare them.
"""

from __future__ import annotations

import numpy as np

from pixlabel.labelers.graph import knn_weight_matrix, reduce_dim
from pixlabel.labelers.protocol import Pool, check_fit_args, scores_to_probs


class GraphLabeler:
    """Shared fit: reduce, build the kNN graph once per pool (cached on the instance), solve."""

    name = "graph"
    method = "poisson"

    def __init__(self, *, k: int = 10, dim: int = 64):
        self.k = k
        self.dim = dim
        self._graph_key: tuple[int, int] | None = None

    def _weights(self, pool: Pool):
        key = (id(pool.embeddings), len(pool))
        if self._graph_key != key:  # cross-validation refits on the same pool: build the graph once
            self.features_ = reduce_dim(pool.embeddings, dim=self.dim, seed=pool.seed)
            self.W_ = knn_weight_matrix(self.features_, k=self.k)
            self._graph_key = key
        return self.W_

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> GraphLabeler:
        import graphlearning as gl

        check_fit_args(pool, labeled_idx, y, n_classes)
        W = self._weights(pool)
        solver = {"poisson": gl.ssl.poisson, "laplace": gl.ssl.laplace}[self.method]
        model = solver(W)
        scores = model.fit(np.asarray(labeled_idx), np.asarray(y))  # (N, K)
        if scores.shape[1] < n_classes:  # graphlearning sizes output by max label seen
            scores = np.pad(scores, ((0, 0), (0, n_classes - scores.shape[1])), constant_values=scores.min())
        self.scores_ = scores
        self.probs_ = scores_to_probs(scores, sharpness=3.0)
        return self


class PoissonLabeler(GraphLabeler):
    name = "poisson"
    method = "poisson"


class LaplaceLabeler(GraphLabeler):
    """Laplace learning = label propagation (Zhu et al. 2003) on the same graph."""

    name = "laplace"
    method = "laplace"
