"""Label-noise checks find injected label flips among well-separated clusters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import cross_val_predict
from sklearn.naive_bayes import GaussianNB

from pixlabel.trust.noise import flag_label_issues, self_confidence_issues


def _blobs_with_flips(
    rng: np.random.Generator, *, k: int, per_class: int, n_flips: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, noisy labels and the flipped indices for ``k`` well-separated Gaussian blobs."""
    centres = rng.normal(scale=10.0, size=(k, 8))
    true = np.repeat(np.arange(k), per_class)
    x = centres[true] + rng.normal(size=(true.size, 8))
    flipped = rng.choice(true.size, size=n_flips, replace=False)
    noisy = true.copy()
    noisy[flipped] = (true[flipped] + rng.integers(1, k, size=n_flips)) % k
    return x, noisy, flipped


def _out_of_fold_probs(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return cross_val_predict(GaussianNB(), x, labels, cv=3, method="predict_proba")


def test_flags_injected_flips_first() -> None:
    rng = np.random.default_rng(0)
    x, noisy, flipped = _blobs_with_flips(rng, k=4, per_class=50, n_flips=20)
    issues = flag_label_issues(noisy, _out_of_fold_probs(x, noisy))
    top = issues[: flipped.size]
    recall = np.isin(flipped, top).mean()
    assert recall >= 0.8
    assert len(set(issues.tolist())) == issues.size


def test_tiny_seed_set_with_a_singleton_class_does_not_crash() -> None:
    rng = np.random.default_rng(1)
    labels = np.append(np.repeat(np.arange(9), 10), 9)  # 10 per class, class 9 has a single example
    probs = rng.dirichlet(np.ones(10), size=labels.size)
    probs[labels == 9] = np.eye(10)[9] * 0.5 + 0.05  # the singleton looks right
    probs[0] = np.eye(10)[3] * 0.9 + 0.01  # item 0 is labelled 0 but clearly looks like class 3
    issues = flag_label_issues(labels, probs)
    assert issues.dtype == np.int64
    assert len(set(issues.tolist())) == issues.size
    assert np.all((issues >= 0) & (issues < labels.size))
    assert 0 in issues.tolist()


def test_one_class_labels_fall_back_to_self_confidence() -> None:
    labels = np.zeros(6, dtype=int)
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.95, 0.05]])
    # cleanlab cannot judge one-class label sets; the fallback flags rows whose label is not the top class.
    assert flag_label_issues(labels, probs).tolist() == [1, 3, 4]
    assert flag_label_issues(labels, probs, fallback_threshold=0.35).tolist() == [1, 3]
    # Same rule when the one class is not 0 (where cleanlab itself would raise).
    assert flag_label_issues(labels + 1, probs[:, ::-1]).tolist() == [1, 3, 4]
    assert flag_label_issues([1], [[0.2, 0.8]]).tolist() == []
    assert flag_label_issues([1], [[0.8, 0.2]]).tolist() == [0]


def test_self_confidence_ranks_lowest_first_and_spares_agreeing_rows() -> None:
    labels = [0, 1, 2, 0]
    probs = [[0.4, 0.3, 0.3], [0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.05, 0.9, 0.05]]
    # Row 0 has low self-confidence but its label is still the top class: not flagged.
    assert self_confidence_issues(labels, probs).tolist() == [3, 1, 2]


def test_noise_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="pred_probs: expected rows summing to 1"):
        flag_label_issues([0, 1], [[0.6, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match="labels: expected 2 entries"):
        flag_label_issues([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\)"):
        flag_label_issues([0, 2], [[0.5, 0.5], [0.5, 0.5]])
