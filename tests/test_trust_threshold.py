"""Accept thresholds chosen on one synthetic sample must hold on another from the same distribution."""

from __future__ import annotations

import numpy as np
import pytest

from pixlabel.trust.threshold import (
    ACCEPT_NOTHING,
    choose_threshold,
    precision_coverage_curve,
    wilson_lower_bound,
)


def _sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated confidences skewed high, like a decent classifier: P(correct | c) = c."""
    conf = rng.beta(8.0, 1.0, size=n)
    return conf, rng.uniform(size=n) < conf


def _precision_at(conf: np.ndarray, correct: np.ndarray, threshold: float) -> float:
    accepted = conf >= threshold
    return float(correct[accepted].mean())


def test_threshold_meets_target_on_independent_sample() -> None:
    rng = np.random.default_rng(0)
    conf, correct = _sample(rng, 3000)
    choice = choose_threshold(conf, correct, target_precision=0.97)
    assert choice.met
    assert 0.0 < choice.expected_coverage < 1.0
    assert choice.precision_lower_bound >= 0.97
    fresh_conf, fresh_correct = _sample(rng, 200_000)
    assert _precision_at(fresh_conf, fresh_correct, choice.threshold) >= 0.97
    # Not needlessly strict either: accepts a real share of the data.
    assert (fresh_conf >= choice.threshold).mean() > 0.1


def test_threshold_is_lowest_qualifying_and_reports_held_out_stats() -> None:
    rng = np.random.default_rng(1)
    conf, correct = _sample(rng, 2000)
    choice = choose_threshold(conf, correct, target_precision=0.95)
    accepted = conf >= choice.threshold
    assert choice.support == accepted.sum()
    assert choice.expected_coverage == pytest.approx(accepted.mean())
    assert choice.expected_precision == pytest.approx(correct[accepted].mean())
    curve = precision_coverage_curve(conf, correct)
    lower = curve.thresholds < choice.threshold
    assert not np.any((curve.precision_lower_bound[lower] >= 0.95) & (curve.count[lower] >= 20))


def test_unreachable_target_accepts_nothing() -> None:
    rng = np.random.default_rng(2)
    conf = rng.uniform(size=500)
    choice = choose_threshold(conf, rng.uniform(size=500) < 0.5)
    assert not choice.met
    assert choice.threshold == ACCEPT_NOTHING
    assert choice.threshold > 1.0
    assert choice.expected_coverage == 0.0
    assert np.isnan(choice.expected_precision)


def test_few_perfect_examples_are_not_enough_evidence() -> None:
    # 30 correct out of 30 has a point precision of 1.0 but a Wilson bound below 0.97.
    conf = np.linspace(0.5, 1.0, 30)
    assert not choose_threshold(conf, np.ones(30, dtype=bool)).met
    many = np.linspace(0.5, 1.0, 300)
    assert choose_threshold(many, np.ones(300, dtype=bool)).threshold == pytest.approx(0.5)


def test_min_support_blocks_thresholds_on_tiny_tails() -> None:
    conf = np.array([0.99] * 5 + [0.6] * 95)
    correct = np.array([True] * 5 + [False] * 95)
    assert not choose_threshold(conf, correct, target_precision=0.5, min_support=20).met
    assert choose_threshold(conf, correct, target_precision=0.5, min_support=5, confidence_level=0.6).met


def test_curve_handles_ties_and_orders_high_to_low() -> None:
    curve = precision_coverage_curve([0.2, 0.9, 0.9, 0.5], [False, True, False, True])
    assert curve.thresholds.tolist() == [0.9, 0.5, 0.2]
    assert curve.count.tolist() == [2, 3, 4]
    assert curve.precision.tolist() == pytest.approx([0.5, 2 / 3, 0.5])
    assert curve.coverage.tolist() == pytest.approx([0.5, 0.75, 1.0])


def test_wilson_bound_is_below_point_estimate_and_tightens_with_n() -> None:
    small = float(wilson_lower_bound(9, 10, z=1.645))
    large = float(wilson_lower_bound(900, 1000, z=1.645))
    assert small < large < 0.9
    assert float(wilson_lower_bound(9, 10, z=0.0)) == pytest.approx(0.9)


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="target_precision"):
        choose_threshold([0.5], [True], target_precision=1.5)
    with pytest.raises(ValueError, match="confidence: expected values in"):
        choose_threshold([2.0], [True])
    with pytest.raises(ValueError, match="correct: expected booleans or 0/1"):
        choose_threshold([0.5], [3])
