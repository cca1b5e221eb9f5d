"""Which images a human should label next (active learning over embeddings).

* Cold start (no labels or no model yet): :func:`typiclust` (Hacohen et al. 2022, "Active learning on a
  budget") picks the most *typical* point of each large uncovered cluster; at tiny budgets that beats
  uncertainty sampling, which needs a model worth trusting.
* With a model: :func:`uncertainty_diversity` takes the most uncertain points (smallest top-2 margin) and
  spreads the picks over clusters so they do not all sit on one stretch of the decision boundary.

All functions return distinct, not-yet-labeled indices, best first, exactly
``min(budget, N - len(labeled_idx))`` of them, deterministic for a given ``seed``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from pixlabel.trust._checks import as_count, as_index_set, as_matrix, as_probs

_KNN = 20  # neighbours for typicality, as in the TypiClust paper
_MIN_CLUSTER_SIZE = 5  # smaller clusters are mostly outliers: visited only after every larger one
_MINIBATCH_ABOVE = 5000  # full KMeans is fine below this many points; MiniBatchKMeans keeps big N fast
_N_INIT = 3  # fixed so results depend only on the seed, not on sklearn's changing default


def suggest(
    embeddings: ArrayLike,
    *,
    budget: int,
    labeled_idx: Iterable[int] = (),
    probs: ArrayLike | None = None,
    seed: int = 0,
) -> NDArray[np.int64]:
    """Indices to label next: TypiClust on a cold start, uncertainty + diversity once a model exists.

    Cold start means ``labeled_idx`` is empty or ``probs`` is None.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(10, 1, (50, 2))])
    >>> picks = suggest(x, budget=2)
    >>> sorted(int(i) // 50 for i in picks)  # one from each blob
    [0, 1]
    """
    x = as_matrix(embeddings, name="embeddings")
    labeled = as_index_set(labeled_idx, name="labeled_idx", n=x.shape[0])
    if probs is not None:
        p = as_probs(probs, n=x.shape[0])
        if labeled.size:
            return uncertainty_diversity(x, p, budget=budget, labeled_idx=labeled, seed=seed)
    return typiclust(x, budget=budget, labeled_idx=labeled, seed=seed)


def typiclust(
    embeddings: ArrayLike, *, budget: int, labeled_idx: Iterable[int] = (), seed: int = 0
) -> NDArray[np.int64]:
    """TypiClust: the most typical point of each of the largest clusters that has no label yet.

    Clusters the data into ``len(labeled_idx) + budget`` groups; typicality of a point is the inverse
    mean distance to its 20 nearest neighbours within its cluster (a density estimate), so picks sit in
    the dense middle of a cluster rather than on its edge.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(10, 1, (40, 2))])
    >>> [int(i) // 40 for i in typiclust(x, budget=1, labeled_idx=[0])]  # blob 0 is covered
    [1]
    """
    x = as_matrix(embeddings, name="embeddings")
    labeled = as_index_set(labeled_idx, name="labeled_idx", n=x.shape[0])
    n_out = min(as_count(budget, name="budget"), x.shape[0] - labeled.size)
    if n_out == 0:
        return np.zeros(0, dtype=np.int64)
    cluster_of = _cluster(x, min(labeled.size + n_out, x.shape[0]), seed)  # (N,)
    n_clusters = int(cluster_of.max()) + 1
    size = np.bincount(cluster_of, minlength=n_clusters)
    members_of = np.split(np.argsort(cluster_of, kind="stable"), np.cumsum(size)[:-1])
    covered = np.bincount(cluster_of[labeled], minlength=n_clusters)
    available = np.ones(x.shape[0], dtype=bool)
    available[labeled] = False
    left = size - covered  # unlabeled points still pickable per cluster
    typicality = np.full(x.shape[0], np.nan)  # filled lazily, one cluster at a time
    picks: list[int] = []
    for _ in range(n_out):
        # Least-covered first, then not-tiny, then largest; lexsort's last key is the primary one.
        c = int(np.lexsort((-size, size < _MIN_CLUSTER_SIZE, covered, left == 0))[0])
        members = members_of[c]
        if np.isnan(typicality[members[0]]):
            typicality[members] = _typicality(x[members])
        candidates = members[available[members]]
        pick = int(candidates[np.argmax(typicality[candidates])])
        picks.append(pick)
        available[pick] = False
        covered[c] += 1
        left[c] -= 1
    return np.asarray(picks, dtype=np.int64)


def uncertainty_diversity(
    embeddings: ArrayLike,
    probs: ArrayLike,
    *,
    budget: int,
    labeled_idx: Iterable[int],
    seed: int = 0,
    pool_factor: int = 10,
) -> NDArray[np.int64]:
    """The most uncertain unlabeled points, spread out: best of each KMeans cluster of the top pool.

    Uncertainty is ``1 - (p1 - p2)`` (top-2 margin). The ``pool_factor * budget`` most uncertain
    unlabeled points are clustered into ``budget`` groups and the most uncertain point of each is
    returned, most uncertain first.

    >>> x = np.linspace(-1, 1, 21).reshape(-1, 1)
    >>> p1 = 1 / (1 + np.exp(-8 * x[:, 0]))
    >>> probs = np.stack([p1, 1 - p1], axis=1)
    >>> [round(float(x[i, 0]), 1) for i in uncertainty_diversity(x, probs, budget=1, labeled_idx=[0])]
    [0.0]
    """
    x = as_matrix(embeddings, name="embeddings")
    p = as_probs(probs, n=x.shape[0])
    labeled = as_index_set(labeled_idx, name="labeled_idx", n=x.shape[0])
    n_out = min(as_count(budget, name="budget"), x.shape[0] - labeled.size)
    if as_count(pool_factor, name="pool_factor") < 1:
        raise ValueError(f"pool_factor: expected at least 1, got {pool_factor}")
    if n_out == 0:
        return np.zeros(0, dtype=np.int64)
    uncertainty = margin_uncertainty(p)
    unlabeled = np.setdiff1d(np.arange(x.shape[0]), labeled)
    pool = unlabeled[np.argsort(-uncertainty[unlabeled], kind="stable")][: pool_factor * n_out]
    if pool.size <= n_out:
        return pool.astype(np.int64)
    cluster_of = _cluster(x[pool], n_out, seed)
    # The pool is sorted most-uncertain first, so a cluster's first position is its most uncertain point.
    _, first = np.unique(cluster_of, return_index=True)
    chosen = np.sort(first)
    if chosen.size < n_out:  # KMeans left a cluster empty (duplicate points): top up by uncertainty
        rest = np.setdiff1d(np.arange(pool.size), chosen)
        chosen = np.sort(np.concatenate([chosen, rest[: n_out - chosen.size]]))
    return pool[chosen].astype(np.int64)


def random_baseline(
    n: int, *, budget: int, labeled_idx: Iterable[int] = (), seed: int = 0
) -> NDArray[np.int64]:
    """Uniformly random unlabeled indices: the baseline every strategy must beat in the benchmark.

    >>> sorted(random_baseline(5, budget=10, labeled_idx=[1, 3]).tolist())
    [0, 2, 4]
    """
    n = as_count(n, name="n")
    labeled = as_index_set(labeled_idx, name="labeled_idx", n=n)
    unlabeled = np.setdiff1d(np.arange(n), labeled)
    n_out = min(as_count(budget, name="budget"), unlabeled.size)
    rng = np.random.default_rng(seed)
    return rng.choice(unlabeled, size=n_out, replace=False).astype(np.int64)


def margin_uncertainty(probs: ArrayLike) -> NDArray[np.float64]:
    """``1 - (p1 - p2)`` per row: 1 when the top two classes tie, 0 when the model is certain.

    >>> margin_uncertainty([[0.5, 0.5], [1.0, 0.0]]).tolist()
    [1.0, 0.0]
    """
    p = as_probs(probs)
    top = -np.sort(-p, axis=1)
    second = top[:, 1] if p.shape[1] > 1 else np.zeros(p.shape[0])
    return np.asarray(1.0 - (top[:, 0] - second), dtype=np.float64)


def _cluster(x: NDArray[np.float64], n_clusters: int, seed: int) -> NDArray[np.int64]:
    """KMeans cluster index per row ``(N,)``; MiniBatchKMeans when N is large."""
    km: KMeans | MiniBatchKMeans
    if x.shape[0] > _MINIBATCH_ABOVE:
        km = MiniBatchKMeans(n_clusters=n_clusters, n_init=_N_INIT, random_state=seed, batch_size=2048)
    else:
        km = KMeans(n_clusters=n_clusters, n_init=_N_INIT, random_state=seed)
    with warnings.catch_warnings():
        # Fewer distinct points than clusters only leaves clusters empty; callers handle that.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return np.asarray(km.fit_predict(x), dtype=np.int64)


def _typicality(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse mean distance to the ``_KNN`` nearest other members; 0 for a lone point."""
    k = min(_KNN, x.shape[0] - 1)
    if k == 0:
        return np.zeros(x.shape[0])
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    # Column 0 is the point itself (distance 0), so it is dropped from the mean.
    return np.asarray(1.0 / (dist[:, 1:].mean(axis=1) + 1e-12), dtype=np.float64)
