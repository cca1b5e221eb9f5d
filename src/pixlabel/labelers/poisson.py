"""Graph-based semi-supervised labelers on a kNN graph of embeddings (graphlearning).

Poisson learning (Calder et al., ICML 2020) stays accurate at 1–10 labels per class where Laplace
learning / label propagation degenerates; both are here so the benchmark can compare them.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from pixlabel.labelers.graph import pool_graph
from pixlabel.labelers.protocol import Pool, check_fit_args, scores_to_probs


class GraphLabeler:
    """Shared fit: reduce, build the kNN graph once per pool (memoised in ``graph.pool_graph``), solve."""

    name = "graph"
    method = "poisson"

    def __init__(self, *, k: int = 10, dim: int = 64):
        self.k = k
        self.dim = dim

    def _weights(self, pool: Pool):
        self.features_, self.W_ = pool_graph(pool.embeddings, dim=self.dim, k=self.k, seed=pool.seed)
        return self.W_

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> GraphLabeler:
        check_fit_args(pool, labeled_idx, y, n_classes)
        W = self._weights(pool)
        labeled_idx, y = np.asarray(labeled_idx), np.asarray(y)
        n_comp, comp = connected_components(W, directed=False)
        probs = np.zeros((len(pool), n_classes))
        # Poisson learning assumes a connected graph (its sources sum to zero per component), so solve each
        # component on its own; real folders do split (near-duplicates, a separate photo shoot).
        for c in range(n_comp):
            rows = np.flatnonzero(comp == c)
            in_c = comp[labeled_idx] == c
            classes = np.unique(y[in_c])
            if len(classes) >= 2:
                local = {r: i for i, r in enumerate(rows)}
                sub_idx = np.array([local[r] for r in labeled_idx[in_c]])
                sub_y = np.searchsorted(classes, y[in_c])
                scores = self._solve(W[rows][:, rows], sub_idx, sub_y, len(classes))
                probs[np.ix_(rows, classes)] = scores_to_probs(scores, sharpness=3.0)
            elif len(classes) == 1:  # every seed here agrees: the component is that class
                probs[rows] = 0.1 / max(n_classes - 1, 1)
                probs[rows, classes[0]] = 0.9
            else:  # no seed in this component: nearest seed in feature space, held weakly
                probs[rows] = self._nearest_seed_probs(rows, labeled_idx, y, n_classes)
        self.n_components_ = n_comp
        self.probs_ = probs
        return self

    def _solve(self, W, labeled_idx: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
        import graphlearning as gl

        solver = {"poisson": gl.ssl.poisson, "laplace": gl.ssl.laplace}[self.method]
        scores = solver(W).fit(labeled_idx, y)  # (n, k')
        if scores.shape[1] < k:  # graphlearning sizes its output by the largest label seen
            scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=scores.min())
        return scores

    def _nearest_seed_probs(self, rows: np.ndarray, labeled_idx: np.ndarray, y: np.ndarray,
                            n_classes: int) -> np.ndarray:
        seeds = self.features_[labeled_idx]
        d2 = ((self.features_[rows, None, :] - seeds[None, :, :]) ** 2).sum(-1)  # (r, M)
        out = np.full((len(rows), n_classes), 0.5 / n_classes)
        out[np.arange(len(rows)), y[d2.argmin(1)]] += 0.5
        return out


class PoissonLabeler(GraphLabeler):
    name = "poisson"
    method = "poisson"


class LaplaceLabeler(GraphLabeler):
    """Laplace learning = label propagation (Zhu et al. 2003) on the same graph."""

    name = "laplace"
    method = "laplace"
