"""Labelers, cross-validation and the decide step on generated data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from pixlabel.errors import PixlabelError
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.registry import create_labeler
from pixlabel.labelers.select import cross_validate, n_folds_for
from pixlabel.labelers.selftrain import SelfTrainLabeler
from pixlabel.pipeline.decide import decide
from pixlabel.trust.threshold import ACCEPT_NOTHING


def blobs(n_per: int = 200, k: int = 4, d: int = 16, spread: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    x = np.concatenate([c + rng.normal(0, spread, (n_per, d)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(k), n_per)
    return x, y


def seeds_of(y: np.ndarray, per: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)])


@pytest.mark.parametrize("name", ["poisson", "laplace", "probe", "labelspreading"])
def test_labelers_recover_separable_classes(name: str) -> None:
    x, y = blobs()
    idx = seeds_of(y, 3)
    lab = create_labeler(name).fit(Pool(x), idx, y[idx], n_classes=4)
    assert lab.probs_.shape == (len(y), 4)
    np.testing.assert_allclose(lab.probs_.sum(1), 1.0, atol=1e-6)
    assert (lab.probs_.argmax(1) == y).mean() > 0.95


def test_unknown_labeler_and_missing_class_are_refused() -> None:
    with pytest.raises(PixlabelError, match="unknown labeler 'nope'.*poisson"):
        create_labeler("nope")
    x, y = blobs()
    idx = seeds_of(y, 2)
    keep = idx[y[idx] != 3]
    with pytest.raises(ValueError, match=r"classes without any labeled example: \[3\]"):
        create_labeler("poisson").fit(Pool(x), keep, y[keep], n_classes=4)


def test_cross_validation_holds_out_every_seed_once() -> None:
    x, y = blobs(spread=3.0)
    idx = seeds_of(y, 5)
    assert n_folds_for(y[idx]) == 5
    res = cross_validate(create_labeler("poisson"), Pool(x), idx, y[idx], n_classes=4, name="poisson")
    assert sorted(res.heldout_idx.tolist()) == list(range(len(idx)))
    assert 0.5 < res.accuracy <= 1.0
    one = seeds_of(y, 1)
    assert not cross_validate(create_labeler("probe"), Pool(x), one, y[one], n_classes=4, name="p").has_heldout


def test_review_corrections_train_but_are_never_held_out() -> None:
    x, y = blobs(spread=3.0)
    idx = seeds_of(y, 5)
    # 20 "corrections" of the hardest images: the points nearest another class's centre
    labeler = create_labeler("poisson").fit(Pool(x), idx, y[idx], n_classes=4)
    hardest = np.argsort(labeler.probs_.max(1))
    extra = np.array([i for i in hardest if i not in set(idx)][:20])
    all_idx = np.concatenate([idx, extra])
    checkable = np.r_[np.ones(len(idx), bool), np.zeros(len(extra), bool)]
    res = cross_validate(create_labeler("poisson"), Pool(x), all_idx, y[all_idx], n_classes=4, name="p",
                         checkable=checkable)
    assert sorted(res.heldout_idx.tolist()) == list(range(len(idx)))  # only the original seeds are scored
    d = decide(Pool(x), all_idx, y[all_idx], n_classes=4, checkable=checkable)
    assert d.cv[d.method].heldout_idx.max() < len(idx)
    assert any("review corrections" in n for n in d.notes)


def test_corrections_that_hurt_the_held_out_seeds_are_not_used_as_sources() -> None:
    x, y = blobs(spread=5.0)  # overlapping classes, as where real review corrections land
    idx = seeds_of(y, 5)
    # 40 "corrections" that say class 1 deep inside class 0's blob: as sources they would flood class 0
    inside0 = np.setdiff1d(np.flatnonzero(y == 0), idx)[:40]
    all_idx = np.concatenate([idx, inside0])
    y_all = np.concatenate([y[idx], np.ones(len(inside0), np.int64)])
    checkable = np.r_[np.ones(len(idx), bool), np.zeros(len(inside0), bool)]
    d = decide(Pool(x), all_idx, y_all, n_classes=4, checkable=checkable)
    assert any("not used as seeds" in n for n in d.notes)
    plain = decide(Pool(x), idx, y[idx], n_classes=4)
    np.testing.assert_allclose(d.probs, plain.probs)


def test_decide_calibrates_and_accepts_the_confident() -> None:
    x, y = blobs(spread=5.0, seed=1)  # overlapping: some labels must go to review
    idx = seeds_of(y, 10)
    d = decide(Pool(x), idx, y[idx], n_classes=4, target_precision=0.95)
    assert d.method in d.cv and d.cv[d.method].accuracy == max(r.accuracy for r in d.cv.values())
    assert ((0 <= d.confidence) & (d.confidence <= 1)).all()
    pool = np.setdiff1d(np.arange(len(y)), idx)
    correct = d.probs.argmax(1)[pool] == y[pool]
    accepted = d.confidence[pool] >= d.threshold.threshold
    assert 0 < accepted.mean() < 1
    assert correct[accepted].mean() > correct[~accepted].mean()  # the threshold separates good from doubtful
    assert d.calibration in ("isotonic", "platt") and d.reliability


def test_decide_with_one_seed_per_class_sends_everything_to_review() -> None:
    x, y = blobs()
    idx = seeds_of(y, 1)
    d = decide(Pool(x), idx, y[idx], n_classes=4, method="poisson")
    assert d.threshold.threshold == ACCEPT_NOTHING and d.calibration == "none"
    assert any("too few seeds" in n for n in d.notes)
    assert (d.probs.argmax(1) == y).mean() > 0.9  # the labels themselves are still good


def stripes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical vs horizontal stripes: (embeddings (n, 8) of pure noise, thumbnails (n, 32, 32, 3), labels)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    thumbs = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8)
    for i in range(n):
        off = rng.integers(0, 4)
        if y[i]:
            thumbs[i, :, off::4] += 150
        else:
            thumbs[i, off::4, :] += 150
    return rng.normal(size=(n, 8)).astype(np.float32), thumbs, y


@pytest.mark.slow
def test_selftrain_learns_from_thumbnails_where_embeddings_are_noise() -> None:
    """Embeddings carry no signal; only the thumbnails do."""
    emb, thumbs, y = stripes(600)
    n = len(y)
    idx = seeds_of(y, 10)
    base = create_labeler("poisson").fit(Pool(emb), idx, y[idx], n_classes=2)
    st = SelfTrainLabeler(epochs=3, min_pool=100).fit(Pool(emb, thumbs), idx, y[idx], n_classes=2)
    assert (base.probs_.argmax(1) == y).mean() < 0.7
    assert (st.probs_.argmax(1) == y).mean() > 0.9
    assert st.round_.shape == (n,) and set(np.unique(st.round_)) <= {0, 1}


def test_selftrain_starts_from_given_base_probs_without_refitting_the_base(monkeypatch) -> None:
    """``--method auto`` already fitted the base graph labeler; self-training must not solve it again."""
    import pixlabel.labelers.registry as registry

    rng = np.random.default_rng(1)
    n = 120
    y = np.arange(n) % 2
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    thumbs = rng.integers(0, 255, (n, 16, 16, 3)).astype(np.uint8)
    idx = seeds_of(y, 5)

    def refuse(*a, **k):
        raise AssertionError("base labeler refitted")

    monkeypatch.setattr(registry, "create_labeler", refuse)
    given = np.eye(2)[y] * 0.8 + 0.1
    st = SelfTrainLabeler(epochs=1, min_pool=10_000).fit(Pool(emb, thumbs), idx, y[idx], n_classes=2,
                                                        base_probs=given)
    assert st.probs_ is given  # pool below min_pool: no CNN round, the given labels stand
    with pytest.raises(ValueError, match="expected"):
        SelfTrainLabeler().fit(Pool(emb, thumbs), idx, y[idx], n_classes=2, base_probs=given[:, :1])


def test_decide_self_trains_unchecked_with_one_seed_per_class(monkeypatch) -> None:
    """1 seed per class: nothing to hold out, yet self-training (measured to help at 1/class) still runs and
    is chosen; the run says its gain was not checked, and every label goes to review."""
    import pixlabel.pipeline.decide as decide_mod

    monkeypatch.setattr(decide_mod, "SELFTRAIN_MIN_POOL", 100)
    emb, thumbs, y = stripes(400, seed=3)
    idx = seeds_of(y, 1)
    d = decide(Pool(emb, thumbs), idx, y[idx], n_classes=2, selftrain_epochs=2)
    assert d.method == "selftrain" and "selftrain" in d.cv
    assert any("without a held-out check" in n for n in d.notes)
    assert d.threshold.threshold == ACCEPT_NOTHING and d.calibration == "none"
    assert d.rounds.shape == (len(y),)
    # beside zero-shot labels (scored on the seeds) an unscored self-training could never win: not trained
    zero_shot = np.eye(2)[y] * 0.8 + 0.1
    d = decide(Pool(emb, thumbs), idx, y[idx], n_classes=2, selftrain_epochs=2, fixed={"zero-shot": zero_shot})
    assert d.method == "zero-shot" and "selftrain" not in d.cv
    assert any("against the zero-shot labels" in n for n in d.notes)


def test_selftrain_trust_is_the_weakest_vote_with_held_out_votes_in_the_same_order() -> None:
    from pixlabel.labelers.select import CVResult
    from pixlabel.pipeline.decide import _selftrain_votes, weakest_vote

    final = np.array([[0.9, 0.1], [0.9, 0.1]])
    cnn = np.array([[0.8, 0.2], [0.3, 0.7]])  # the CNN doubts the second label
    assert weakest_vote(np.array([0, 0]), final, cnn).tolist() == [0.8, 0.3]

    st = SelfTrainLabeler()
    st.cnn_probs_ = np.array([[0.5, 0.5], [0.5, 0.5], [0.7, 0.3], [0.1, 0.9]])  # (N=4, K=2)
    st.base_probs_ = np.full((4, 2), 0.5)
    labeled_idx = np.array([2, 3])  # seed 0 is pool row 2, seed 1 is row 3
    result = CVResult("selftrain", 1.0, np.array([1, 0]), final)  # held out seed 1 first
    base = CVResult("poisson-pixels", 1.0, np.array([0, 1]), np.array([[0.6, 0.4], [0.2, 0.8]]))
    pool_votes, heldout_votes = _selftrain_votes(st, base, labeled_idx, result)
    assert pool_votes[0] is st.cnn_probs_ and pool_votes[1] is st.base_probs_
    np.testing.assert_array_equal(heldout_votes[0], st.cnn_probs_[[3, 2]])
    np.testing.assert_array_equal(heldout_votes[1], base.heldout_probs[[1, 0]])
    other_folds = CVResult("poisson-pixels", 1.0, np.array([0]), np.array([[0.6, 0.4]]))
    assert len(_selftrain_votes(st, other_folds, labeled_idx, result)[1]) == 1  # misaligned base: CNN only
    st.cnn_probs_ = None
    assert _selftrain_votes(st, base, labeled_idx, result) == ([], [])


def test_decide_calibrates_self_training_on_its_weakest_vote_and_says_so(monkeypatch) -> None:
    import pixlabel.pipeline.decide as decide_mod

    monkeypatch.setattr(decide_mod, "SELFTRAIN_MIN_POOL", 100)
    emb, thumbs, y = stripes(600, seed=4)  # SelfTrainLabeler trains no CNN below 500 images
    idx = seeds_of(y, 10)
    d = decide(Pool(emb, thumbs), idx, y[idx], n_classes=2, selftrain_epochs=2)
    if d.method != "selftrain":  # auto picked a graph labeler: force the path under test
        d = decide(Pool(emb, thumbs), idx, y[idx], n_classes=2, method="selftrain", selftrain_epochs=2)
    assert any("weakest vote of: final graph, self-training CNN" in n for n in d.notes)
    assert d.calibration in ("isotonic", "platt") and len(d.heldout_confidence) == len(idx)
    assert ((0 <= d.confidence) & (d.confidence <= 1)).all()
