"""Method choice, ensembles, seed flags and the held-out support of the accept threshold (issue 16)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixlabel.backbones.sizing import choose_image_size, size_for_short_side
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.select import CVResult
from pixlabel.pipeline.decide import ENSEMBLES, _add_ensembles, _choose, decide, suspect_seeds
from pixlabel.trust.threshold import ThresholdChoice, check_heldout_support, min_heldout_support


def _cv(name: str, heldout_probs: np.ndarray, y: np.ndarray) -> CVResult:
    idx = np.arange(len(y))
    return CVResult(name, float((heldout_probs.argmax(1) == y).mean()), idx, heldout_probs)


def test_ensemble_is_scored_out_of_fold_from_its_members() -> None:
    y = np.array([0, 1, 0, 1])
    a = np.array([[.9, .1], [.6, .4], [.4, .6], [.2, .8]])  # 2 of 4 right
    b = np.array([[.6, .4], [.1, .9], [.9, .1], [.4, .6]])  # 3 of 4 right
    c = np.array([[.7, .3], [.3, .7], [.8, .2], [.3, .7]])  # 4 of 4 right
    cv = {"poisson": _cv("poisson", a, y), "probe": _cv("probe", b, y), "poisson-pixels": _cv("poisson-pixels", c, y)}
    fitted = {"poisson": np.tile([.5, .5], (6, 1)), "probe": np.tile([.3, .7], (6, 1)),
              "poisson-pixels": np.tile([.2, .8], (6, 1))}
    _add_ensembles(cv, fitted, y)
    mean_ab = (a + b) / 2
    assert cv["ensemble"].accuracy == float((mean_ab.argmax(1) == y).mean())
    np.testing.assert_allclose(cv["ensemble"].heldout_probs, mean_ab)
    np.testing.assert_allclose(fitted["ensemble-pixels"], np.tile([1 / 3, 2 / 3], (6, 1)))
    assert set(ENSEMBLES) <= set(cv)


def test_ensemble_on_different_folds_is_not_scored() -> None:
    y = np.array([0, 1, 0, 1])
    a = _cv("poisson", np.eye(2)[y], y)
    b = CVResult("probe", 1.0, np.array([1, 0, 3, 2]), np.eye(2)[y[[1, 0, 3, 2]]])
    fitted = {"poisson": np.eye(2)[y], "probe": np.eye(2)[y]}
    cv = {"poisson": a, "probe": b}
    _add_ensembles(cv, fitted, y)
    assert np.isnan(cv["ensemble"].accuracy)


def test_an_ensemble_within_one_standard_error_of_the_best_is_chosen() -> None:
    def r(name: str, acc: float, n: int = 40) -> CVResult:
        return CVResult(name, acc, np.arange(n), np.zeros((n, 2)))

    fitted = {n: np.zeros((1, 2)) for n in ("poisson", "probe", "ensemble")}
    # best 0.60 on 40 seeds: one standard error is 0.077
    assert _choose({"poisson": r("poisson", .60), "probe": r("probe", .55), "ensemble": r("ensemble", .55)},
                   fitted) == "ensemble"
    assert _choose({"poisson": r("poisson", .60), "probe": r("probe", .55), "ensemble": r("ensemble", .50)},
                   fitted) == "poisson"
    # a member clearly weaker than the best keeps its average out, however well the average scored
    assert _choose({"poisson": r("poisson", .60), "probe": r("probe", .50), "ensemble": r("ensemble", .60)},
                   fitted) == "poisson"
    # nothing scored: the unchecked default, or self-training when it ran
    nan = {n: CVResult(n, float("nan"), np.zeros(0, int), np.zeros((0, 2))) for n in fitted}
    assert _choose(nan, fitted) == "ensemble"
    assert _choose(nan, {**fitted, "selftrain": np.zeros((1, 2))}) == "selftrain"


def test_seeds_are_flagged_only_where_the_labeler_is_sure_of_another_class() -> None:
    probs = np.array([[.1, .9], [.2, .8], [.9, .1], [.45, .55], [.02, .98]])
    given = np.array([0, 0, 0, 0, 0])
    conf = np.array([.85, .70, .95, .55, .99])
    # row 1 disagrees but at 70%; row 2 agrees; rows 4 then 0 clear 80%, most confident first
    assert suspect_seeds(probs, given, conf).tolist() == [4, 0]
    assert suspect_seeds(probs, given, conf, min_confidence=0.999).tolist() == []


def test_a_threshold_needs_enough_held_out_seeds_above_it_and_their_precision() -> None:
    choice = ThresholdChoice(0.9, 0.97, 0.4, True)
    need = min_heldout_support(0.97)
    assert need == 34
    few, why = check_heldout_support(choice, [0.95] * (need - 1), [True] * (need - 1), target_precision=0.97)
    assert not few.met and f"{need} are needed" in why
    ok, why = check_heldout_support(choice, [0.95] * need, [True] * need, target_precision=0.97)
    assert ok == choice and why == ""
    bad, why = check_heldout_support(choice, [0.95] * 50, [True] * 40 + [False] * 10, target_precision=0.97)
    assert not bad.met and "80% correct" in why
    # seeds below the threshold do not count as support
    low, _ = check_heldout_support(choice, [0.5] * 100, [True] * 100, target_precision=0.97)
    assert not low.met


def test_decide_on_weak_features_accepts_nothing_and_flags_no_correct_seed() -> None:
    """Noise embeddings and 5 correct seeds per class: CV says ~chance; nothing may be accepted or flagged."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 32)).astype(np.float32)
    y_all = np.repeat(np.arange(4), 150)
    idx = np.concatenate([np.flatnonzero(y_all == k)[:5] for k in range(4)])
    d = decide(Pool(x, None, 0), idx, y_all[idx], n_classes=4)
    assert not d.threshold.met and len(d.flagged_seeds) == 0
    assert not (d.confidence >= d.threshold.threshold).any()


def test_image_size_follows_the_images(tmp_path) -> None:
    assert [size_for_short_side(s) for s in (8, 28, 32, 48, 600, float("nan"))] == [96, 96, 96, 224, 224, 96]
    for i, side in enumerate((28, 30, 26)):
        Image.new("L", (side, side + 5)).save(tmp_path / f"s{i}.png")
    small = choose_image_size(sorted(tmp_path.glob("s*.png")))
    assert small.size == 96 and small.median_short_side == 28 and small.sampled == 3
    for i in range(3):
        Image.new("RGB", (900, 640)).save(tmp_path / f"b{i}.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    big = choose_image_size(sorted(tmp_path.glob("b*.jpg")) + [tmp_path / "broken.png"])
    assert big.size == 224 and big.sampled == 3 and "640 px" in big.describe()


def test_self_training_that_scores_best_is_not_traded_for_an_ensemble() -> None:
    def r(name: str, acc: float) -> CVResult:
        return CVResult(name, acc, np.arange(100), np.zeros((100, 2)))

    fitted = {n: np.zeros((1, 2)) for n in ("poisson", "ensemble", "selftrain")}
    assert _choose({"poisson": r("poisson", .80), "ensemble": r("ensemble", .81), "selftrain": r("selftrain", .83)},
                   fitted) == "selftrain"


def test_one_wrong_held_out_seed_in_twenty_refuses_a_97_percent_threshold() -> None:
    choice = ThresholdChoice(0.9, 0.97, 0.4, True)
    n = 40
    refused, why = check_heldout_support(choice, [0.95] * n, [True] * (n - 2) + [False] * 2, target_precision=0.97)
    assert not refused.met and "95% correct" in why
    kept, _ = check_heldout_support(choice, [0.95] * n, [True] * (n - 1) + [False], target_precision=0.97)
    assert kept.met  # 39/40 = 97.5%
