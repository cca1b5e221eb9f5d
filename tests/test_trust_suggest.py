"""Next-to-label suggestions on Gaussian blobs and a known decision boundary."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from pixlabel.trust.suggest import (
    margin_uncertainty,
    random_baseline,
    suggest,
    typiclust,
    uncertainty_diversity,
)


def _blobs(
    rng: np.random.Generator, sizes: list[int], dim: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, blob id per point and blob centres; blobs are far apart relative to their spread."""
    centres = rng.normal(scale=15.0, size=(len(sizes), dim))
    blob = np.repeat(np.arange(len(sizes)), sizes)
    return centres[blob] + rng.normal(size=(blob.size, dim)), blob, centres


def _boundary_problem(rng: np.random.Generator, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points on a square; the model's P(class 0) depends on x only, boundary at x = 0."""
    x = rng.uniform(-5.0, 5.0, size=(n, 2))
    p0 = 1.0 / (1.0 + np.exp(-2.0 * x[:, 0]))
    return x, np.stack([p0, 1.0 - p0], axis=1)


def _check_valid(picks: np.ndarray, *, n: int, labeled: list[int], expected: int) -> None:
    assert picks.dtype == np.int64
    assert picks.size == expected
    assert len(set(picks.tolist())) == picks.size
    assert not set(picks.tolist()) & set(labeled)
    assert np.all((picks >= 0) & (picks < n))


def test_typiclust_cold_start_covers_every_blob_near_its_centre() -> None:
    rng = np.random.default_rng(0)
    x, blob, centres = _blobs(rng, [120, 80, 60, 40, 30])
    picks = typiclust(x, budget=5)
    _check_valid(picks, n=len(x), labeled=[], expected=5)
    assert sorted(blob[picks].tolist()) == [0, 1, 2, 3, 4]
    # Largest uncovered cluster first.
    assert blob[picks[0]] == 0
    for i in picks:
        members = x[blob == blob[i]]
        dist_to_centre = np.linalg.norm(members - centres[blob[i]], axis=1)
        # The pick is more central than three quarters of its blob.
        assert np.linalg.norm(x[i] - centres[blob[i]]) < np.quantile(dist_to_centre, 0.25)


def test_typiclust_skips_blobs_that_already_have_labels() -> None:
    rng = np.random.default_rng(1)
    x, blob, _ = _blobs(rng, [50, 50, 50, 50])
    labeled = [int(np.flatnonzero(blob == b)[0]) for b in (0, 2)]
    picks = typiclust(x, budget=2, labeled_idx=labeled)
    _check_valid(picks, n=len(x), labeled=labeled, expected=2)
    assert sorted(blob[picks].tolist()) == [1, 3]


def test_uncertainty_diversity_picks_near_boundary_and_spread_along_it() -> None:
    rng = np.random.default_rng(2)
    x, probs = _boundary_problem(rng)
    labeled = [int(np.argmin(x[:, 0])), int(np.argmax(x[:, 0]))]
    picks = uncertainty_diversity(x, probs, budget=6, labeled_idx=labeled)
    _check_valid(picks, n=len(x), labeled=labeled, expected=6)
    # Every pick is closer to the boundary than 90% of the points.
    assert np.all(np.abs(x[picks, 0]) < np.quantile(np.abs(x[:, 0]), 0.1))
    # Diverse: the picks cover most of the boundary's length instead of bunching up (the six most
    # uncertain points alone come within ~0.1 of each other on this data).
    assert np.ptp(x[picks, 1]) > 6.0
    assert pdist(x[picks]).min() > 0.5
    # Best first: uncertainty never increases along the list.
    assert np.all(np.diff(margin_uncertainty(probs)[picks]) <= 0)


def test_suggest_dispatches_on_cold_start_and_with_a_model() -> None:
    rng = np.random.default_rng(3)
    x, probs = _boundary_problem(rng, n=150)
    assert suggest(x, budget=4).tolist() == typiclust(x, budget=4).tolist()
    assert suggest(x, budget=4, probs=probs).tolist() == typiclust(x, budget=4).tolist()
    with_model = suggest(x, budget=4, labeled_idx=[0, 1], probs=probs)
    assert with_model.tolist() == uncertainty_diversity(x, probs, budget=4, labeled_idx=[0, 1]).tolist()


@pytest.mark.parametrize("use_probs", [False, True])
def test_suggest_exact_count_no_duplicates_and_deterministic(use_probs: bool) -> None:
    rng = np.random.default_rng(4)
    x, probs = _boundary_problem(rng, n=40)
    labeled = list(range(0, 40, 4))  # 10 labeled, 30 left
    p = probs if use_probs else None
    for budget in (0, 1, 7, 30, 100):
        picks = suggest(x, budget=budget, labeled_idx=labeled, probs=p, seed=5)
        _check_valid(picks, n=40, labeled=labeled, expected=min(budget, 30))
        assert picks.tolist() == suggest(x, budget=budget, labeled_idx=labeled, probs=p, seed=5).tolist()


def test_suggest_copes_with_duplicate_points() -> None:
    x = np.zeros((12, 3))
    x[6:] = 1.0  # only two distinct points, more clusters than that
    probs = np.full((12, 2), 0.5)
    for p in (None, probs):
        picks = suggest(x, budget=5, labeled_idx=[0], probs=p)
        _check_valid(picks, n=12, labeled=[0], expected=5)


def test_random_baseline_is_uniform_over_unlabeled_and_seeded() -> None:
    picks = random_baseline(100, budget=10, labeled_idx=range(50), seed=3)
    _check_valid(picks, n=100, labeled=list(range(50)), expected=10)
    assert picks.tolist() == random_baseline(100, budget=10, labeled_idx=range(50), seed=3).tolist()
    assert picks.tolist() != random_baseline(100, budget=10, labeled_idx=range(50), seed=4).tolist()


def test_suggest_rejects_bad_input() -> None:
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"labeled_idx: expected indices in \[0, 5\)"):
        suggest(x, budget=1, labeled_idx=[7])
    with pytest.raises(ValueError, match="labeled_idx: expected unique indices"):
        suggest(x, budget=1, labeled_idx=[1, 1])
    with pytest.raises(ValueError, match="budget: expected a non-negative integer"):
        suggest(x, budget=-1)
    with pytest.raises(ValueError, match="probs: expected 5 rows"):
        suggest(x, budget=1, labeled_idx=[0], probs=np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="embeddings: expected a 2-D array"):
        suggest(np.zeros(5), budget=1)
