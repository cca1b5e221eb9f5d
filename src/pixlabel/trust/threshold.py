"""Accept thresholds: the lowest confidence at which auto-labels are precise enough to skip human review.

Chosen on held-out data (labels the model did not train on) and conservatively: a threshold counts only if
the *lower confidence bound* of its precision (Wilson score interval) reaches the target, so on a few dozen
held-out examples it does not chase one lucky streak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from pixlabel.trust._checks import as_bools, as_count, as_scores

# Returned when no threshold qualifies: above every possible confidence, so nothing is accepted.
ACCEPT_NOTHING = float(np.nextafter(1.0, 2.0))


@dataclass(frozen=True)
class ThresholdChoice:
    """Accept items with ``confidence >= threshold``; the rest go to review.

    ``expected_precision`` and ``expected_coverage`` are measured on the held-out data (``nan`` precision
    when nothing is accepted); ``precision_lower_bound`` is the Wilson bound the choice was made on;
    ``met`` says whether the target was reached at all.
    """

    threshold: float
    expected_precision: float
    expected_coverage: float
    met: bool
    precision_lower_bound: float = float("nan")
    support: int = 0  # held-out examples at or above the threshold


@dataclass(frozen=True)
class PrecisionCoverageCurve:
    """Precision and coverage of ``{confidence >= t}`` for every distinct held-out confidence ``t``.

    Arrays run from the highest threshold (least coverage) to the lowest; ``count`` is the accepted
    number and ``precision_lower_bound`` the Wilson lower bound used by :func:`choose_threshold`.
    """

    thresholds: NDArray[np.float64]
    precision: NDArray[np.float64]
    coverage: NDArray[np.float64]
    count: NDArray[np.int64]
    precision_lower_bound: NDArray[np.float64]


def precision_coverage_curve(
    confidence: ArrayLike, correct: ArrayLike, *, confidence_level: float = 0.95
) -> PrecisionCoverageCurve:
    """Precision/coverage at every distinct confidence value, highest threshold first.

    >>> c = precision_coverage_curve([0.9, 0.8, 0.8, 0.3], [True, True, False, False])
    >>> c.thresholds.tolist(), c.precision.tolist(), c.coverage.tolist()
    ([0.9, 0.8, 0.3], [1.0, 0.6666666666666666, 0.5], [0.25, 0.75, 1.0])
    """
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level: expected a value in (0, 1), got {confidence_level}")
    conf = as_scores(confidence, name="confidence")
    corr = as_bools(correct, name="correct", n=conf.shape[0])
    if conf.shape[0] == 0:
        raise ValueError("confidence: expected at least one held-out example, got 0")
    order = np.argsort(-conf, kind="stable")
    conf_sorted, corr_sorted = conf[order], corr[order]
    n_acc = np.arange(1, conf.shape[0] + 1)
    k_acc = np.cumsum(corr_sorted)
    # Ties are accepted together, so a threshold's row is the last position of its tie group.
    last_of_tie = np.append(conf_sorted[1:] != conf_sorted[:-1], True)
    n, k = n_acc[last_of_tie], k_acc[last_of_tie]
    z = float(norm.ppf(confidence_level))
    return PrecisionCoverageCurve(
        thresholds=conf_sorted[last_of_tie].astype(np.float64),
        precision=k / n,
        coverage=n / conf.shape[0],
        count=n.astype(np.int64),
        precision_lower_bound=wilson_lower_bound(k, n, z=z),
    )


def choose_threshold(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    target_precision: float = 0.97,
    min_support: int = 20,
    confidence_level: float = 0.95,
) -> ThresholdChoice:
    """The lowest threshold whose accepted held-out set has precision >= target with high confidence.

    A threshold qualifies when at least ``min_support`` held-out examples lie at or above it and the
    one-sided Wilson lower bound (at ``confidence_level``) of their precision is >= ``target_precision``.
    With nothing qualifying it returns ``ACCEPT_NOTHING`` (just above 1.0) and ``met=False``. Note the
    bound needs enough evidence: at target 0.97 even a perfect record needs ~88 held-out examples.

    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(size=2000)
    >>> choice = choose_threshold(conf, rng.uniform(size=2000) < conf, target_precision=0.9)
    >>> choice.met, 0.8 < choice.threshold < 0.95
    (True, True)
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision: expected a value in (0, 1], got {target_precision}")
    as_count(min_support, name="min_support")
    curve = precision_coverage_curve(confidence, correct, confidence_level=confidence_level)
    ok = (curve.count >= min_support) & (curve.precision_lower_bound >= target_precision)
    if not ok.any():
        return ThresholdChoice(
            threshold=ACCEPT_NOTHING, expected_precision=float("nan"), expected_coverage=0.0, met=False
        )
    # The curve runs from high to low thresholds, so the lowest qualifying threshold is the last hit.
    i = int(np.flatnonzero(ok)[-1])
    return ThresholdChoice(
        threshold=float(curve.thresholds[i]),
        expected_precision=float(curve.precision[i]),
        expected_coverage=float(curve.coverage[i]),
        met=True,
        precision_lower_bound=float(curve.precision_lower_bound[i]),
        support=int(curve.count[i]),
    )


def wilson_lower_bound(successes: ArrayLike, trials: ArrayLike, *, z: float) -> NDArray[np.float64]:
    """Lower end of the Wilson score interval for a binomial proportion (elementwise, ``trials > 0``).

    >>> round(float(wilson_lower_bound(10, 10, z=1.645)), 3)
    0.787
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    p = k / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.asarray((centre - spread) / (1 + z2 / n), dtype=np.float64)


def threshold_for_pool(confidence: ArrayLike, *, target_precision: float = 0.97) -> ThresholdChoice:
    """The lowest threshold whose accepted set has expected precision ≥ target *on the pool itself*.

    With calibrated confidences, the expected precision of ``{conf >= t}`` is the mean confidence of that set —
    an estimate over every unlabeled image rather than a few held-out seeds, so it works at 10 labels per class
    where a held-out Wilson bound (``choose_threshold``) cannot certify 97%. It is only as good as the
    calibration, which the report shows (reliability diagram, ECE).

    >>> threshold_for_pool([0.99, 0.98, 0.9, 0.5], target_precision=0.95).threshold
    0.9
    """
    conf = as_scores(confidence, name="confidence")
    if conf.size == 0:
        return ThresholdChoice(ACCEPT_NOTHING, float("nan"), 0.0, False)
    order = np.argsort(-conf, kind="stable")
    sorted_conf = conf[order]
    running_precision = np.cumsum(sorted_conf) / np.arange(1, conf.size + 1)
    ok = np.flatnonzero(running_precision >= target_precision)
    if ok.size == 0:
        return ThresholdChoice(ACCEPT_NOTHING, float("nan"), 0.0, False)
    last = int(ok.max())
    # ties: everything with the threshold's confidence is accepted, so step back to a tie boundary
    threshold = float(sorted_conf[last])
    accepted = conf >= threshold
    precision = float(conf[accepted].mean())
    if precision < target_precision:
        threshold = float(np.nextafter(threshold, 2.0))
        accepted = conf >= threshold
        precision = float(conf[accepted].mean()) if accepted.any() else float("nan")
    return ThresholdChoice(threshold, precision, float(accepted.mean()), bool(accepted.any()),
                           support=int(accepted.sum()))


def min_heldout_support(target_precision: float) -> int:
    """Fewest held-out seeds above a threshold that can show a precision of ``target_precision`` at all: below
    ``1 / (1 - target)`` a single error is not even expected, so an all-correct streak proves nothing.

    >>> min_heldout_support(0.97), min_heldout_support(0.9)
    (34, 10)
    """
    return int(np.ceil(round(1.0 / (1.0 - target_precision), 6)))


def check_heldout_support(choice: ThresholdChoice, heldout_confidence: ArrayLike, heldout_correct: ArrayLike, *,
                          target_precision: float) -> tuple[ThresholdChoice, str]:
    """Keep a pool-estimated threshold only where the held-out seeds back it: enough of them at or above it
    (:func:`min_heldout_support`) and at least ``target_precision`` of those right. Returns the choice (or
    accept-nothing) and, when refused, why in words.

    The pool rule trusts the calibration; calibration fitted on a few dozen held-out seeds extrapolates at its
    top end (on colour clip art at 5 labels/class it accepted 2-6% of the pool at 83-88% precision; on a 5k
    Fashion-MNIST sample at 10/class, 93% with a tolerance of 2 standard errors on the held-out precision).

    >>> c = ThresholdChoice(0.9, 0.97, 0.5, True)
    >>> check_heldout_support(c, [0.95] * 10, [True] * 10, target_precision=0.97)[0].met
    False
    """
    conf = as_scores(heldout_confidence, name="heldout_confidence")
    correct = as_bools(heldout_correct, name="heldout_correct", n=conf.size)
    if not choice.met:
        return choice, ""
    above = conf >= choice.threshold
    n, need = int(above.sum()), min_heldout_support(target_precision)
    nothing = ThresholdChoice(ACCEPT_NOTHING, float("nan"), 0.0, False)
    if n < need:
        return nothing, (f"only {n} held-out seed(s) score above the threshold the pool suggests; {need} are "
                         f"needed to check {target_precision:.0%} precision, so nothing is auto-accepted "
                         "(label more images to get auto-acceptance)")
    precision = float(correct[above].mean())
    if precision < target_precision:
        return nothing, (f"held-out seeds above the threshold were {precision:.0%} correct ({n} seeds), too far "
                         f"below the {target_precision:.0%} target: nothing is auto-accepted")
    return choice, ""
