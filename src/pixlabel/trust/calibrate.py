"""Calibration: make a model's confidence mean "probability this label is right".

Two tools, both sklearn-style (settings in ``__init__``, ``fit`` returns ``self``, learned state ends
in ``_``):

* :class:`TemperatureScaler` rescales a whole ``(N, K)`` logit matrix by one scalar ``T`` (Guo et al. 2017).
  It keeps the argmax and fixes global over/under-confidence.
* :class:`ConfidenceCalibrator` maps one top-1 score per item to P(correct) with isotonic regression fitted
  on held-out (out-of-fold) examples; it is what accept thresholds should be chosen on.

:func:`expected_calibration_error` and :func:`reliability_table` measure the result for the report.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logit, softmax
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from pixlabel.trust._checks import as_bools, as_count, as_labels, as_matrix, as_scores

# Search range for T: 1/20 .. 20 covers every net we have seen (typical fitted T is 0.8..3).
_LOG_T_BOUNDS = (float(np.log(0.05)), float(np.log(20.0)))
# Scores are clipped away from 0/1 before logit() so a saturated softmax (score == 1.0) stays finite.
_SCORE_EPS = 1e-6


class TemperatureScaler:
    """Fit one temperature ``T`` so ``softmax(logits / T)`` minimises held-out negative log-likelihood.

    Accepts logits or log-probabilities (the same thing up to a per-row shift, which softmax ignores).

    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(500, 3)) * 4.0
    >>> y = logits.argmax(axis=1)
    >>> ts = TemperatureScaler().fit(logits, y)
    >>> ts.transform(logits).shape
    (500, 3)
    """

    temperature_: float
    nll_: float

    def fit(self, logits: ArrayLike, y: ArrayLike) -> TemperatureScaler:
        """Learn ``temperature_`` from held-out ``logits`` ``(N, K)`` and true classes ``y`` ``(N,)``."""
        z = as_matrix(logits, name="logits")
        if z.shape[0] == 0:
            raise ValueError("logits: expected at least one row to fit a temperature, got 0")
        labels = as_labels(y, name="y", n=z.shape[0], k=z.shape[1])
        rows = np.arange(z.shape[0])

        def nll(log_t: float) -> float:
            return float(-log_softmax(z / np.exp(log_t), axis=1)[rows, labels].mean())

        # Bounded scalar search on log T: NLL is smooth and unimodal in log T in practice, and the bound
        # keeps a degenerate fit (all predictions right -> T -> 0) from running off to infinity.
        res = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
        self.temperature_ = float(np.exp(res.x))
        self.nll_ = float(res.fun)
        return self

    def transform(self, logits: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities ``(N, K)``, rows summing to 1."""
        if not hasattr(self, "temperature_"):
            raise RuntimeError("TemperatureScaler.transform called before fit")
        z = as_matrix(logits, name="logits")
        return np.asarray(softmax(z / self.temperature_, axis=1), dtype=np.float64)

    def fit_transform(self, logits: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        return self.fit(logits, y).transform(logits)


class ConfidenceCalibrator:
    """Map a raw top-1 score to P(correct), fitted on held-out ``(score, correct)`` pairs.

    With at least ``min_isotonic`` examples and both outcomes present it fits isotonic regression
    (monotone, no shape assumption). Otherwise isotonic regression would memorise a handful of points, so
    it fits Platt scaling on ``logit(score)`` with Platt's smoothed targets ``(n+ + 1)/(n+ + 2)`` and
    ``1/(n- + 2)``, which keeps outputs away from exactly 0 or 1. ``method_`` records which was used.

    >>> cal = ConfidenceCalibrator().fit([0.9, 0.8, 0.6, 0.95], [True, True, False, True])
    >>> cal.method_
    'platt'
    >>> bool(0.0 < cal.predict([0.7])[0] < 1.0)
    True
    """

    method_: Literal["isotonic", "platt"]
    n_samples_: int

    def __init__(self, *, min_isotonic: int = 30) -> None:
        self.min_isotonic = min_isotonic

    def fit(self, scores: ArrayLike, correct: ArrayLike) -> ConfidenceCalibrator:
        """Learn the mapping from ``scores`` ``(M,)`` in [0, 1] and ``correct`` ``(M,)`` booleans."""
        s = as_scores(scores, name="scores")
        c = as_bools(correct, name="correct", n=s.shape[0])
        if s.shape[0] == 0:
            raise ValueError("scores: expected at least one held-out example to calibrate on, got 0")
        as_count(self.min_isotonic, name="min_isotonic")
        self.n_samples_ = int(s.shape[0])
        both_outcomes = bool(c.any() and not c.all())
        if s.shape[0] >= self.min_isotonic and both_outcomes:
            self._iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, c.astype(float))
            self.method_ = "isotonic"
        else:
            self._platt = self._fit_platt(s, c)
            self.method_ = "platt"
        return self

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Calibrated P(correct) ``(N,)`` for raw ``scores`` ``(N,)``; non-decreasing in the score."""
        if not hasattr(self, "method_"):
            raise RuntimeError("ConfidenceCalibrator.predict called before fit")
        s = as_scores(scores, name="scores")
        if self.method_ == "isotonic":
            return np.asarray(self._iso.predict(s), dtype=np.float64)
        return np.asarray(self._platt.predict_proba(_logit_feature(s))[:, 1], dtype=np.float64)

    @staticmethod
    def _fit_platt(s: NDArray[np.float64], c: NDArray[np.bool_]) -> LogisticRegression:
        n_pos, n_neg = int(c.sum()), int((~c).sum())
        t_pos, t_neg = (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0)
        target = np.where(c, t_pos, t_neg)
        # sklearn has no soft targets: give every example once as class 1 with weight t and once as
        # class 0 with weight 1 - t, which is the same cross-entropy as Platt's soft-target loss.
        x = _logit_feature(s)
        xx = np.vstack([x, x])
        yy = np.concatenate([np.ones(len(s)), np.zeros(len(s))])
        ww = np.concatenate([target, 1.0 - target])
        # No L2 penalty: the smoothed targets already regularise, and a penalty would flatten 2 params.
        return LogisticRegression(C=np.inf).fit(xx, yy, sample_weight=ww)


def _logit_feature(s: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(logit(np.clip(s, _SCORE_EPS, 1.0 - _SCORE_EPS)), dtype=np.float64).reshape(-1, 1)


class ReliabilityBin(TypedDict):
    """One non-empty equal-width confidence bin of a reliability diagram."""

    lo: float
    hi: float
    count: int
    mean_confidence: float
    accuracy: float


def reliability_table(confidence: ArrayLike, correct: ArrayLike, *, n_bins: int = 15) -> list[ReliabilityBin]:
    """Per-bin count, mean confidence and accuracy over ``n_bins`` equal-width bins of [0, 1].

    Bins are ``[lo, hi)`` except the last, which includes 1.0. Empty bins are left out, so every row has
    a defined accuracy.

    >>> reliability_table([0.1, 0.15, 0.9], [False, True, True], n_bins=2)[0]["count"]
    2
    """
    conf, corr, which = _binned(confidence, correct, n_bins)
    rows: list[ReliabilityBin] = []
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        if count == 0:
            continue
        rows.append(
            ReliabilityBin(
                lo=b / n_bins,
                hi=(b + 1) / n_bins,
                count=count,
                mean_confidence=float(conf[members].mean()),
                accuracy=float(corr[members].mean()),
            )
        )
    return rows


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, *, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean of ``|accuracy - mean confidence|`` over equal-width bins.

    0 is perfect; a model that says 0.9 and is right half the time scores 0.4.

    >>> expected_calibration_error([0.9, 0.9, 0.9, 0.9], [True, True, False, False])
    0.4
    """
    rows = reliability_table(confidence, correct, n_bins=n_bins)
    total = sum(r["count"] for r in rows)
    gap = sum(r["count"] * abs(r["accuracy"] - r["mean_confidence"]) for r in rows)
    return float(gap / total)


def _binned(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64]]:
    if as_count(n_bins, name="n_bins") < 1:
        raise ValueError(f"n_bins: expected at least 1, got {n_bins}")
    conf = as_scores(confidence, name="confidence")
    corr = as_bools(correct, name="correct", n=conf.shape[0])
    if conf.shape[0] == 0:
        raise ValueError("confidence: expected at least one example, got 0")
    # Edges as b / n_bins (not conf * n_bins) so a value equal to a reported ``lo`` lands in that bin.
    edges = np.arange(n_bins + 1) / n_bins
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1).astype(np.int64)
    return conf, corr, which
