"""The semi-supervised GAN labeler on thumbnails with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from pixlabel.errors import PixlabelError
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.registry import AUTO_CANDIDATES, available, create_labeler
from pixlabel.labelers.sgan import SGANLabeler, thumbs_to_vectors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def bar_thumbs(n_per: int = 80, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey 32-px thumbnails: class c has a bright horizontal bar in band c, on noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per)
    img = rng.integers(0, 90, (len(y), 32, 32)).astype(np.uint8)
    for i, c in enumerate(y):
        top = 4 + 9 * c + rng.integers(-1, 2)
        img[i, top:top + 4, 4:28] = 230
    return np.repeat(img[..., None], 3, axis=3), y


def seeds(y: np.ndarray, per: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)]))


def test_thumbs_to_vectors_keeps_one_channel_for_grey_and_three_for_colour() -> None:
    grey, _ = bar_thumbs(n_per=2)
    assert thumbs_to_vectors(grey).shape == (6, 32 * 32)
    colour = grey.copy()
    colour[0, 0, 0] = (255, 0, 0)
    v = thumbs_to_vectors(colour)
    assert v.shape == (6, 32 * 32 * 3) and v.max() <= 1.0 and v.min() >= 0.0


@pytest.mark.slow
def test_sgan_labels_the_pool_from_three_seeds_per_class_and_is_deterministic() -> None:
    thumbs, y = bar_thumbs()
    idx = seeds(y, 3)
    pool = Pool(np.zeros((len(y), 2), np.float32), thumbs, seed=0)
    lab = create_labeler("sgan", steps=80, batch_size=32, hidden=(200, 100)).fit(pool, idx, y[idx], n_classes=3)
    assert lab.probs_.shape == (len(y), 3)
    np.testing.assert_allclose(lab.probs_.sum(1), 1.0, atol=1e-6)
    rest = np.setdiff1d(np.arange(len(y)), idx)
    assert (lab.probs_.argmax(1) == y)[rest].mean() > 0.9
    again = SGANLabeler(steps=80, batch_size=32, hidden=(200, 100)).fit(pool, idx, y[idx], n_classes=3)
    np.testing.assert_allclose(again.probs_, lab.probs_, atol=1e-5)
    assert lab.history_[0][0] == 0 and len(lab.history_) >= 2  # (step, sup, unsup, feature matching)


def test_sgan_is_registered_but_not_an_auto_candidate_and_needs_thumbnails() -> None:
    assert "sgan" in available() and "sgan" not in AUTO_CANDIDATES
    thumbs, y = bar_thumbs(n_per=5)
    idx = seeds(y, 1)
    with pytest.raises(PixlabelError, match="thumbnails"):
        SGANLabeler(steps=1).fit(Pool(np.zeros((len(y), 2), np.float32)), idx, y[idx], n_classes=3)
    with pytest.raises(ValueError, match="without any labeled example"):
        SGANLabeler(steps=1).fit(Pool(np.zeros((len(y), 2), np.float32), thumbs), idx[:2], y[idx[:2]], n_classes=3)
