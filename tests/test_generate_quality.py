"""Quality metrics on features with a known answer (no backbone needed)."""

from __future__ import annotations

import numpy as np

from pixlabel.generate.quality import (
    frechet_distance,
    judge_features,
    mean_pairwise_distance,
    measure_quality,
    split_real,
)


def clusters(n_per: int, k: int = 3, d: int = 8, seed: int = 0, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = np.eye(k, d) * 10
    x = np.concatenate([c + rng.normal(0, spread, (n_per, d)) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


def test_frechet_distance_is_zero_for_the_same_gaussian_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4))
    assert frechet_distance(a, b) < 0.05
    assert abs(frechet_distance(a, b + 3.0) - 4 * 9.0) < 1.0  # |mu diff|^2 = 4 dims x 3^2


def test_mode_collapse_shows_as_low_diversity() -> None:
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(100, 5))
    assert mean_pairwise_distance(spread + 0.0, rng=rng) > 2.5
    assert mean_pairwise_distance(np.ones((100, 5)), rng=rng) == 0.0
    assert np.isnan(mean_pairwise_distance(np.ones((1, 5)), rng=rng))


def test_measure_quality_on_good_and_on_collapsed_wrong_class_fakes() -> None:
    real, ry = clusters(100)
    good, gy = clusters(60, seed=1)
    q = measure_quality(real, ry, good, gy, classes=("a", "b", "c"))
    assert q.fidelity == 1.0 and q.fidelity_ceiling == 1.0 and q.cas == 1.0
    assert all(0.8 < v["diversity"] < 1.25 for v in q.per_class.values())
    assert q.fid < 1.0
    # class "c" collapsed onto one point and drawn where "a" lives: fidelity and diversity both catch it
    bad = good.copy()
    bad[gy == 2] = real[0]
    q2 = measure_quality(real, ry, bad, gy, classes=("a", "b", "c"))
    assert q2.per_class["c"]["fidelity"] == 0.0 and q2.per_class["c"]["diversity"] == 0.0
    assert q2.per_class["c"]["mean_confidence"] < 0.1
    assert abs(q2.fidelity - 2 / 3) < 1e-9 and q2.min_diversity == 0.0 and q2.fid > q.fid
    assert set(q2.to_dict()) >= {"fid", "fidelity", "cas", "min_diversity", "per_class"}


def test_split_keeps_a_training_image_per_class_and_judge_features_add_pixels() -> None:
    y = np.array([0] * 10 + [1])
    train, test = split_real(y, seed=0)
    assert set(y[train]) == {0, 1} and len(test) == 2 and not set(train) & set(test)
    imgs = np.zeros((3, 1, 32, 32), np.uint8)
    assert judge_features(np.ones((3, 5)), imgs).shape == (3, 5 + 256)


def test_report_escapes_class_names_and_shows_one_grid_per_class() -> None:
    from pixlabel.generate.data import LabeledImages
    from pixlabel.generate.quality import Quality
    from pixlabel.generate.report import report_html

    imgs = np.zeros((4, 1, 16, 16), np.uint8)
    data = LabeledImages(imgs, np.array([0, 0, 1, 1]), ("<script>", "ok"), ["a", "b", "c", "d"])
    q = Quality(fid=1.5, fidelity=0.5, fidelity_ceiling=0.9, cas=0.7, real_test_accuracy=0.9,
                per_class={"ok": {"fidelity": 1.0, "diversity": 0.8, "mean_confidence": 0.9}})
    summary = {"counts": {"ok": 3}, "real_counts": {"<script>": 2, "ok": 2}, "step": 7, "resumed_from": 0,
               "train_seconds": 1.0, "total_seconds": 2.0, "history": [{"step": 5, "loss_d": 1.0, "loss_g": 0.5}]}
    page = report_html(data=data, eval_x=imgs, eval_y=np.array([0, 0, 1, 1]), quality=q, summary=summary)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") == 2 and "50.0%" in page and "80.0%" in page
