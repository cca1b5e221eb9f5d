"""Pick a labeler by cross-validation on the seeds, calibrate its confidence on held-out seeds, and choose the
accept threshold that meets the target precision. Arrays in, arrays out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from pixlabel.labelers.poisson import PoissonLabeler
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.registry import AUTO_CANDIDATES, NEEDS_THUMBS, create_labeler
from pixlabel.labelers.select import CVResult, cross_validate, n_folds_for
from pixlabel.labelers.selftrain import SelfTrainLabeler
from pixlabel.trust.calibrate import ConfidenceCalibrator, expected_calibration_error, reliability_table
from pixlabel.trust.threshold import ACCEPT_NOTHING, ThresholdChoice, check_heldout_support, threshold_for_pool

log = logging.getLogger(__name__)
SELFTRAIN_MIN_POOL = 2000  # below this a CNN learns little from the pool and CV noise dominates
ISOTONIC_MIN_HELDOUT = 200  # below this many held-out seeds, calibrate with Platt scaling
# Averages of the auto candidates' probabilities, scored by CV like any candidate (their out-of-fold output is
# the average of the members' on the same folds, so they cost nothing to check). On the suite's colour sets a
# graph + probe average beat the best single candidate at 5 and 10 labels/class (bench/out/suite.json).
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "ensemble": ("poisson", "probe"),
    "ensemble-pixels": ("poisson-pixels", "poisson", "probe"),
}
# With one seed per class nothing can be held out: the average of every candidate is the default, the choice
# least hurt on the suite when its best member differs from set to set (pixels on scans, backbone on photos).
UNCHECKED_DEFAULT = ("ensemble-pixels", "ensemble")
# A seed is suspect when the labeler, not trained on it, is this sure (calibrated) of another class. On the
# suite's colour sets and digits (all seeds correct) 0.8 flagged at most 3.3% of the seeds; 0.5 up to 13%
# (bench/out/suite_flags.json). The accept target itself (0.97) is rarely reached by a calibration fitted on a
# few dozen seeds, so it would find no mislabeled seed at all.
SUSPECT_CONFIDENCE = 0.8


@dataclass
class Decision:
    method: str
    probs: np.ndarray  # (N, K) raw labeler output
    confidence: np.ndarray  # (N,) calibrated P(top-1 label is right)
    threshold: ThresholdChoice
    cv: dict[str, CVResult]
    rounds: np.ndarray  # (N,) self-training round each label was settled in
    calibration: str  # "isotonic" | "platt" | "none"
    heldout_confidence: np.ndarray  # (M,) calibrated, out-of-fold (optimistic: calibrated on itself)
    heldout_correct: np.ndarray  # (M,) bool
    flagged_seeds: np.ndarray  # positions into the seed arrays, most suspicious first
    target_precision: float = 0.97
    notes: list[str] = field(default_factory=list)
    fitted: dict[str, np.ndarray] = field(default_factory=dict)  # every candidate's (N, K) fitted on all seeds

    @property
    def reliability(self) -> list[dict[str, float]]:
        if not len(self.heldout_correct):
            return []
        return [{k: float(v) for k, v in b.items()}  # type: ignore[arg-type]
                for b in reliability_table(self.heldout_confidence, self.heldout_correct)]

    @property
    def ece_heldout(self) -> float:
        if not len(self.heldout_correct):
            return float("nan")
        return expected_calibration_error(self.heldout_confidence, self.heldout_correct)


def _selftrain(pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int,
               max_folds: int, rounds: int, epochs: int, checkable: np.ndarray | None, base: str,
               base_probs: np.ndarray | None) -> tuple[SelfTrainLabeler, CVResult]:
    """Self-train once on all seeds, from the pseudo-labels of graph labeler ``base``; its CV is Poisson
    learning on the learned features (the final labeler). The CNN never trains on seed images."""
    st = SelfTrainLabeler(rounds=rounds, epochs=epochs, base=base).fit(pool, labeled_idx, y, n_classes=n_classes,
                                                                       base_probs=base_probs)
    learned = Pool(st.features_, None, pool.seed)
    dim = st.features_.shape[1]
    cv = cross_validate(PoissonLabeler(dim=dim), learned, labeled_idx, y, n_classes=n_classes,
                        name="selftrain", max_folds=max_folds, seed=seed, checkable=checkable)
    return st, cv


def weakest_vote(label: np.ndarray, *probs: np.ndarray) -> np.ndarray:
    """(M,) the lowest probability that any of ``probs`` (each (M, K)) gives ``label`` (M,).

    A label that the graph, its base labeler and the CNN all back is more often right than one with the same
    graph score that another labeler doubts: on Fashion-MNIST 70k (10 labels/class) ranking by the weakest vote
    raised the share of images that can be accepted at 97% precision (oracle threshold) from 52% to 60%.

    >>> weakest_vote(np.array([0, 1]), np.array([[.9, .1], [.2, .8]]), np.array([[.6, .4], [.1, .9]])).tolist()
    [0.6, 0.8]
    """
    rows = np.arange(len(label))
    return np.min(np.stack([p[rows, label] for p in probs]), axis=0)


def _selftrain_votes(st: SelfTrainLabeler, base: CVResult | None, labeled_idx: np.ndarray, result: CVResult
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The other voters beside self-training's final graph: (N, K) on the pool and (M, K) on the held-out seeds
    in ``result``'s order. The CNN's softmax is out-of-sample at every seed (it never trains on seed images);
    the base labeler's held-out output is its own cross-validation (same folds)."""
    if st.cnn_probs_ is None:
        return [], []
    pool_votes, heldout_votes = [st.cnn_probs_], [st.cnn_probs_[labeled_idx[result.heldout_idx]]]
    if base is not None and base.has_heldout and np.array_equal(np.sort(base.heldout_idx), np.sort(result.heldout_idx)):
        where = {int(i): k for k, i in enumerate(base.heldout_idx)}
        pool_votes.append(st.base_probs_)
        heldout_votes.append(base.heldout_probs[[where[int(i)] for i in result.heldout_idx]])
    return pool_votes, heldout_votes


def _corrections_help(pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, checkable: np.ndarray, *,
                      n_classes: int, seed: int, max_folds: int) -> bool:
    """Poisson CV on the representative seeds, with vs without the review corrections as extra sources."""
    sub = np.flatnonzero(checkable)
    with_c = cross_validate(PoissonLabeler(), pool, labeled_idx, y, n_classes=n_classes, name="with",
                            max_folds=max_folds, seed=seed, checkable=checkable)
    without = cross_validate(PoissonLabeler(), pool, labeled_idx[sub], y[sub], n_classes=n_classes,
                             name="without", max_folds=max_folds, seed=seed)
    log.info("review corrections as seeds: cv %.3f with, %.3f without", with_c.accuracy, without.accuracy)
    return bool(with_c.accuracy >= without.accuracy)


def _best_graph(cv: dict[str, CVResult]) -> str:
    """The graph labeler with the best held-out seed accuracy: self-training starts from its pseudo-labels.
    Without a held-out check (1 seed per class), the first graph candidate: the measured default."""
    graphs = [n for n in AUTO_CANDIDATES if n in cv and n in ("poisson", "poisson-pixels")]
    scored = [n for n in graphs if not np.isnan(cv[n].accuracy)]
    if scored:
        return max(scored, key=lambda n: cv[n].accuracy)
    return graphs[0] if graphs else "poisson"


def decide(pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int, method: str = "auto",
           target_precision: float = 0.97, seed: int = 0, max_folds: int = 5,
           fixed: dict[str, np.ndarray] | None = None, selftrain_rounds: int = 1,
           selftrain_epochs: int = 8, checkable: np.ndarray | None = None) -> Decision:
    """``fixed``: candidates whose (N, K) probabilities need no seeds (zero-shot); every seed is held out for them.
    ``checkable`` (M,) bool: seeds representative enough to hold out for CV and calibration (not review
    corrections, which are the hardest images by construction); ignored when they are too few to fold."""
    notes: list[str] = []
    if checkable is not None and (checkable.all() or not checkable.any()
                                  or n_folds_for(y[checkable], max_folds=max_folds) < 2):
        checkable = None
    elif checkable is not None:
        n_fixed = int((~checkable).sum())
        if not _corrections_help(pool, labeled_idx, y, checkable, n_classes=n_classes, seed=seed,
                                 max_folds=max_folds):
            # Corrections of the hardest images sit where the graph mixes classes; as sources they can spread
            # the wrong way. They still are the final labels of their own images (the caller keeps them).
            sub = np.flatnonzero(checkable)
            d = decide(pool, labeled_idx[sub], y[sub], n_classes=n_classes, method=method,
                       target_precision=target_precision, seed=seed, max_folds=max_folds, fixed=fixed,
                       selftrain_rounds=selftrain_rounds, selftrain_epochs=selftrain_epochs)
            for r in d.cv.values():
                r.heldout_idx = sub[r.heldout_idx]
            d.flagged_seeds = sub[d.flagged_seeds]
            d.notes.insert(0, f"{n_fixed} review corrections kept as labels but not used as seeds: with them the "
                              "held-out seed accuracy was lower")
            return d
        notes.append(f"{n_fixed} review corrections train the labelers but are not used to "
                     "check or calibrate them (they were picked as the hardest images)")
    cv: dict[str, CVResult] = {}
    fitted: dict[str, np.ndarray] = {}
    rounds = np.zeros(len(pool), dtype=np.int64)
    base = AUTO_CANDIDATES if method == "auto" else ((method,) if method != "selftrain" else ())
    if pool.thumbs is None and method == "auto":
        base = tuple(n for n in base if n not in NEEDS_THUMBS)
    elif pool.thumbs is None and method in NEEDS_THUMBS:
        raise ValueError(f"method {method!r} needs image thumbnails in the pool")
    for name, probs_fixed in (fixed or {}).items():
        fitted[name] = probs_fixed
        seen = np.arange(len(y))
        cv[name] = CVResult(name, float((probs_fixed[labeled_idx].argmax(1) == y).mean()) if len(y) else float("nan"),
                            seen, probs_fixed[labeled_idx])
    if set(range(n_classes)) - set(np.asarray(y).tolist()):
        if not fixed:
            raise ValueError("some classes have no seed labels and no zero-shot labels")
        notes.append("some classes have no seeds: only zero-shot labels can cover them")
        base, method = (), "zero-shot"
    for name in base:
        labeler = create_labeler(name)
        cv[name] = cross_validate(labeler, pool, labeled_idx, y, n_classes=n_classes,
                                  name=name, max_folds=max_folds, seed=seed, checkable=checkable)
        fitted[name] = labeler.fit(pool, labeled_idx, y, n_classes=n_classes).probs_
        log.info("cv %s: %.3f", name, cv[name].accuracy)
    can_check = n_folds_for(y, max_folds=max_folds) >= 2 if len(y) else False
    # Without seeds to hold out (1 per class) self-training still runs: its gain cannot be checked on this
    # pool, but on Fashion-MNIST at 1 label/class it gained +2.7, +2.8 and -0.6 points (3 seeds, mean +1.6),
    # the same kind of evidence that makes poisson-pixels the unchecked default. Not beside zero-shot labels
    # there: those are scored on the seeds, so an unscored self-training could never be chosen over them.
    want_selftrain = method == "selftrain" or (
        method == "auto" and pool.thumbs is not None and len(pool) >= SELFTRAIN_MIN_POOL
        and (can_check or not fixed))
    if want_selftrain:
        start = _best_graph(cv)
        st, cv["selftrain"] = _selftrain(pool, labeled_idx, y, n_classes=n_classes, seed=seed, max_folds=max_folds,
                                          rounds=selftrain_rounds, epochs=selftrain_epochs, checkable=checkable,
                                          base=start, base_probs=fitted.get(start))
        fitted["selftrain"] = st.probs_
        notes.append(f"self-training: {st.stop_reason_}")
        if not can_check:
            notes.append("self-training used without a held-out check (one seed in some class): measured to "
                         "help on Fashion-MNIST; --method poisson-pixels skips it")
    elif method == "auto" and pool.thumbs is None:
        notes.append("self-training skipped: no thumbnails in the pool")
    elif method == "auto" and len(pool) < SELFTRAIN_MIN_POOL:
        notes.append(f"self-training skipped: pool of {len(pool)} < {SELFTRAIN_MIN_POOL} images")
    elif method == "auto":
        notes.append("self-training skipped: one seed in some class, so it could not be checked against the "
                     "zero-shot labels")

    if method == "auto":
        _add_ensembles(cv, fitted, y)
    chosen = _choose(cv, fitted)
    self_trained = want_selftrain and chosen == "selftrain"
    if self_trained:
        rounds = st.round_
    probs = fitted[chosen]
    top1 = probs.max(axis=1)
    result = cv[chosen]
    if result.has_heldout:
        scores = result.heldout_probs.max(axis=1)
        if self_trained:  # rank by the weakest of the independent votes
            pool_votes, heldout_votes = _selftrain_votes(st, cv.get(start), labeled_idx, result)
            top1 = weakest_vote(probs.argmax(1), probs, *pool_votes)
            scores = weakest_vote(result.heldout_probs.argmax(1), result.heldout_probs, *heldout_votes)
            if pool_votes:
                voters = ("final graph", "self-training CNN", f"base graph {start}")[:len(pool_votes) + 1]
                notes.append(f"confidence ranks each label by the weakest vote of: {', '.join(voters)} "
                             "(before calibration)")
        correct = result.heldout_probs.argmax(axis=1) == y[result.heldout_idx]
        # isotonic steps overfit a few dozen held-out seeds (confidences of exactly 1.0); Platt stays smooth
        calibrator = ConfidenceCalibrator(min_isotonic=ISOTONIC_MIN_HELDOUT).fit(scores, correct)
        confidence = calibrator.predict(top1)
        heldout_conf = calibrator.predict(scores)
        threshold = threshold_for_pool(np.delete(confidence, labeled_idx), target_precision=target_precision)
        threshold, why = check_heldout_support(threshold, heldout_conf, correct, target_precision=target_precision)
        if why:
            notes.append(why)
        flagged = result.heldout_idx[suspect_seeds(result.heldout_probs, y[result.heldout_idx], heldout_conf)]
        calibration: str = calibrator.method_
    else:
        notes.append("too few seeds per class to hold any out: confidences are uncalibrated, "
                     "every model label goes to review")
        confidence, heldout_conf, correct = top1.copy(), np.zeros(0), np.zeros(0, bool)
        threshold = ThresholdChoice(ACCEPT_NOTHING, float("nan"), 0.0, False)
        flagged, calibration = np.zeros(0, np.int64), "none"
    if not threshold.met and not any("auto-accepted" in n for n in notes):
        notes.append(f"no threshold reaches the target precision {target_precision:.0%}: all model labels "
                     "go to review")
    return Decision(chosen, probs, confidence, threshold, cv, rounds, calibration, heldout_conf,
                    correct, flagged, target_precision, notes, fitted)


def _add_ensembles(cv: dict[str, CVResult], fitted: dict[str, np.ndarray], y: np.ndarray) -> None:
    """Add each of ``ENSEMBLES`` whose members were all fitted: the mean of their (N, K) probabilities, scored
    out of fold where every member was held out on the same folds (they are: one splitter seed per run)."""
    for name, members in ENSEMBLES.items():
        if not all(m in fitted for m in members):
            continue
        fitted[name] = np.mean([fitted[m] for m in members], axis=0)
        parts = [cv[m] for m in members if m in cv]
        if len(parts) == len(members) and all(p.has_heldout and np.array_equal(p.heldout_idx, parts[0].heldout_idx)
                                              for p in parts):
            probs = np.mean([p.heldout_probs for p in parts], axis=0)
            acc = float((probs.argmax(1) == y[parts[0].heldout_idx]).mean())
            cv[name] = CVResult(name, acc, parts[0].heldout_idx, probs)
        else:
            cv[name] = CVResult(name, float("nan"), np.zeros(0, np.int64), np.zeros((0, fitted[name].shape[1])))


def _choose(cv: dict[str, CVResult], fitted: dict[str, np.ndarray]) -> str:
    """The candidate with the best held-out accuracy, except that an ensemble within one standard error of
    the best, whose members all are too, is preferred: CV on a few dozen seeds cannot separate candidates that
    close, and an average of them is the safer bet. Self-training, when it scores best, is kept (it was
    measured to add 2-3 points on Fashion-MNIST 70k that no average of the base candidates reaches).
    Nothing held out (1 seed per class): self-training when it ran, else ``UNCHECKED_DEFAULT``."""
    scored = {n: r for n, r in cv.items() if not np.isnan(r.accuracy)}
    if not scored:
        if "selftrain" in fitted:
            return "selftrain"
        return next((n for n in UNCHECKED_DEFAULT if n in fitted), next(iter(fitted)))
    best = max(scored, key=lambda n: scored[n].accuracy)
    if best == "selftrain":  # it learns from the pool what no average of the base candidates sees
        return best
    acc, n = scored[best].accuracy, len(scored[best].heldout_idx)
    se = float(np.sqrt(max(acc * (1 - acc), 1e-12) / max(n, 1)))

    def near(name: str) -> bool:
        return name in scored and scored[name].accuracy >= acc - se

    # an average only of members CV cannot tell apart: averaging in a clearly weaker member (the probe at 0.75
    # beside graphs at 0.84 in the README demo, Fashion-MNIST 20k) cost that demo 3 points
    close = [e for e in ENSEMBLES if near(e) and all(near(m) for m in ENSEMBLES[e])]
    return max(close, key=lambda e: scored[e].accuracy) if close else best


def suspect_seeds(heldout_probs: np.ndarray, given: np.ndarray, heldout_confidence: np.ndarray, *,
                  min_confidence: float = SUSPECT_CONFIDENCE) -> np.ndarray:
    """Positions (into the held-out rows) of seeds that look mislabeled, most confident first: the labeler,
    not trained on that seed, gives another class with a calibrated confidence of at least ``min_confidence``.
    A disagreement of a labeler that is often wrong is no evidence: with cleanlab's rule 33-59% of the correct
    seeds of the suite's colour sets were flagged.

    >>> suspect_seeds(np.array([[.05, .95], [.9, .1], [.4, .6]]), np.array([0, 0, 0]), np.array([.9, .9, .6]))
    array([0])
    """
    if not len(given):
        return np.zeros(0, np.int64)
    wrong = (heldout_probs.argmax(1) != given) & (heldout_confidence >= min_confidence)
    rows = np.flatnonzero(wrong)
    return rows[np.argsort(-heldout_confidence[rows], kind="stable")]
