"""Calibration on synthetic data whose true probabilities are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from pixlabel.trust.calibrate import (
    ConfidenceCalibrator,
    TemperatureScaler,
    expected_calibration_error,
    reliability_table,
)


def _sample_classes(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One class per row drawn from that row's distribution."""
    u = rng.uniform(size=(probs.shape[0], 1))
    return (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=probs.shape[1] - 1)


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that claim more than the truth: true P(correct) = p, reported score = p ** 0.3."""
    p = rng.uniform(0.3, 1.0, size=n)
    return p**0.3, rng.uniform(size=n) < p


def test_temperature_scaler_recovers_known_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=2.0, size=(4000, 10))
    y = _sample_classes(rng, softmax(true_logits, axis=1))
    # The model's logits are 2.5x too sharp; dividing by T = 2.5 restores the true distribution.
    ts = TemperatureScaler().fit(true_logits * 2.5, y)
    assert ts.temperature_ == pytest.approx(2.5, rel=0.15)
    probs = ts.transform(true_logits * 2.5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs.argmax(axis=1), true_logits.argmax(axis=1))


def test_temperature_scaler_same_result_on_log_probs() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(500, 4))
    y = _sample_classes(rng, softmax(logits / 2.0, axis=1))
    from_logits = TemperatureScaler().fit(logits, y).temperature_
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert TemperatureScaler().fit(log_probs, y).temperature_ == pytest.approx(from_logits, rel=1e-3)


def test_temperature_scaler_reduces_nll_of_overconfident_model() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=1.5, size=(1000, 5))
    y = _sample_classes(rng, softmax(logits, axis=1))
    ts = TemperatureScaler().fit(logits * 3.0, y)
    raw_nll = -np.log(softmax(logits * 3.0, axis=1)[np.arange(1000), y]).mean()
    assert ts.nll_ < raw_nll


def test_temperature_scaler_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="y: expected class indices in"):
        TemperatureScaler().fit(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="logits: expected finite"):
        TemperatureScaler().fit([[0.0, np.inf]], [0])
    with pytest.raises(RuntimeError, match="before fit"):
        TemperatureScaler().transform(np.zeros((1, 2)))


def test_isotonic_calibration_reduces_held_out_ece() -> None:
    rng = np.random.default_rng(3)
    fit_scores, fit_correct = _overconfident(rng, 2000)
    test_scores, test_correct = _overconfident(rng, 5000)
    cal = ConfidenceCalibrator().fit(fit_scores, fit_correct)
    assert cal.method_ == "isotonic"
    raw = expected_calibration_error(test_scores, test_correct)
    calibrated = expected_calibration_error(cal.predict(test_scores), test_correct)
    assert raw > 0.1
    assert calibrated < raw / 3


def test_few_examples_fall_back_to_platt() -> None:
    rng = np.random.default_rng(4)
    scores, correct = _overconfident(rng, 20)
    cal = ConfidenceCalibrator().fit(scores, correct)
    assert cal.method_ == "platt"
    out = cal.predict(np.linspace(0.0, 1.0, 11))
    assert np.all((out > 0.0) & (out < 1.0))
    assert np.all(np.diff(out) >= 0)


def test_single_outcome_falls_back_to_smoothed_platt() -> None:
    scores = np.linspace(0.5, 1.0, 100)
    cal = ConfidenceCalibrator().fit(scores, np.ones(100, dtype=bool))
    assert cal.method_ == "platt"
    out = cal.predict(scores)
    # Platt's smoothed target for 100 successes is 101/102: confident but never certain.
    assert np.all(out < 1.0)
    assert out.mean() > 0.9


def test_calibrator_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="scores: expected values in"):
        ConfidenceCalibrator().fit([0.5, 1.5], [True, False])
    with pytest.raises(ValueError, match="correct: expected a 1-D array of length 2"):
        ConfidenceCalibrator().fit([0.5, 0.7], [True])
    with pytest.raises(ValueError, match="at least one"):
        ConfidenceCalibrator().fit([], [])


def test_ece_small_for_calibrated_and_large_for_miscalibrated() -> None:
    rng = np.random.default_rng(5)
    conf = rng.uniform(size=50_000)
    assert expected_calibration_error(conf, rng.uniform(size=50_000) < conf) < 0.02
    # Claims its confidence but is right only half as often.
    assert expected_calibration_error(conf, rng.uniform(size=50_000) < conf / 2) > 0.1


def test_reliability_table_counts_and_bins() -> None:
    conf = np.array([0.05, 0.1, 0.55, 0.95, 1.0])
    correct = np.array([False, True, True, True, False])
    rows = reliability_table(conf, correct, n_bins=10)
    assert [(r["lo"], r["hi"], r["count"]) for r in rows] == [
        (0.0, 0.1, 1),
        (0.1, 0.2, 1),
        (0.5, 0.6, 1),
        (0.9, 1.0, 2),
    ]
    assert rows[-1]["accuracy"] == pytest.approx(0.5)
    assert rows[-1]["mean_confidence"] == pytest.approx(0.975)
    assert sum(r["count"] for r in rows) == conf.size
