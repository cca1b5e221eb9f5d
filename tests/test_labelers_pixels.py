"""The pixel view: Poisson learning on [pixel PCA, backbone]. Real Fashion-MNIST (or MNIST) thumbnails with
noise for embeddings, so any accuracy above chance has to come from the pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixlabel.datasets import default_dataset
from pixlabel.labelers.pixels import PoissonPixelsLabeler, pixel_view, pixels_and_backbone
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.registry import create_labeler
from pixlabel.pipeline.decide import decide


@pytest.fixture(scope="module")
def real_pool() -> tuple[Pool, np.ndarray]:
    ds = default_dataset()
    rng = np.random.default_rng(0)
    rows = rng.choice(len(ds.labels), 1500, replace=False)
    thumbs = np.stack([np.asarray(Image.fromarray(im).convert("RGB").resize((32, 32))) for im in ds.images[rows]])
    emb = rng.normal(size=(len(rows), 96)).astype(np.float32)
    return Pool(emb, thumbs, 0), ds.labels[rows]


def seeds(y: np.ndarray, per: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:per] for c in np.unique(y)])


def pool_accuracy(probs: np.ndarray, y: np.ndarray, idx: np.ndarray) -> float:
    rest = np.setdiff1d(np.arange(len(y)), idx)
    return float((probs.argmax(1) == y)[rest].mean())


def test_pixel_view_is_whitened_pca_of_the_thumbnails(real_pool) -> None:
    pool, _ = real_pool
    v = pixel_view(pool.thumbs, dim=10)
    assert v.shape == (1500, 10) and v.dtype == np.float32
    assert np.allclose(v.std(0), 1.0, atol=0.05)  # whitened: every kept direction counts the same


def test_pixel_view_fitted_on_a_sample_keeps_the_neighbours(real_pool) -> None:
    """Past ``fit_rows`` the PCA is fitted on a seeded sample and applied in chunks (no N x 3072 float copy);
    the view it gives has nearly the same nearest neighbours as the full fit."""
    from pixlabel.labelers.graph import knn_search

    pool, _ = real_pool
    full = pixel_view(pool.thumbs, dim=10)
    sampled = pixel_view(pool.thumbs, dim=10, fit_rows=500)
    assert sampled.shape == full.shape and sampled.dtype == np.float32
    assert not np.allclose(np.abs(sampled), np.abs(full), atol=1e-3)  # it really was fitted on other rows
    a, _ = knn_search(full, 11)
    b, _ = knn_search(sampled, 11)
    shared = np.mean([len(set(x[1:]) & set(z[1:])) / 10 for x, z in zip(a, b, strict=True)])
    assert shared > 0.75  # 0.86 measured; a random projection of the pixels shares 0.22


def test_poisson_pixels_labels_what_only_the_pixels_show(real_pool) -> None:
    pool, y = real_pool
    idx = seeds(y, 10)
    plain = create_labeler("poisson").fit(pool, idx, y[idx], n_classes=10).probs_
    pix = PoissonPixelsLabeler().fit(pool, idx, y[idx], n_classes=10).probs_
    assert pool_accuracy(plain, y, idx) < 0.2  # noise embeddings: about chance (0.1)
    assert pool_accuracy(pix, y, idx) > 0.55


def test_combined_view_is_memoised_per_pool(real_pool) -> None:
    pool, _ = real_pool
    assert pixels_and_backbone(pool) is pixels_and_backbone(pool)
    other = Pool(pool.embeddings, pool.thumbs.copy(), pool.seed)
    assert pixels_and_backbone(other) is not pixels_and_backbone(pool)
    assert pixels_and_backbone(pool, pixel_dim=8).shape[1] == 8 + 64


def test_auto_skips_pixel_candidates_without_thumbnails_and_explicit_use_is_an_error(real_pool) -> None:
    pool, y = real_pool
    idx = seeds(y, 5)
    no_thumbs = Pool(pool.embeddings, None, 0)
    d = decide(no_thumbs, idx, y[idx], n_classes=10)
    assert "poisson-pixels" not in d.cv and "poisson" in d.cv
    with pytest.raises(ValueError, match="thumbnails"):
        decide(no_thumbs, idx, y[idx], n_classes=10, method="poisson-pixels")


def test_auto_picks_the_pixel_view_when_cross_validation_says_so(real_pool) -> None:
    pool, y = real_pool  # 1,500 images: below the self-training minimum, so graph labelers decide
    idx = seeds(y, 10)
    d = decide(pool, idx, y[idx], n_classes=10)
    assert d.cv["poisson-pixels"].accuracy > d.cv["poisson"].accuracy + 0.3
    assert d.method == "poisson-pixels" and pool_accuracy(d.probs, y, idx) > 0.55


def test_without_cross_validation_the_average_of_all_candidates_is_the_default(real_pool) -> None:
    pool, y = real_pool
    idx = seeds(y, 1)
    d = decide(pool, idx, y[idx], n_classes=10)
    assert d.method == "ensemble-pixels"
    members = [d.fitted[n] for n in ("poisson-pixels", "poisson", "probe")]
    np.testing.assert_allclose(d.probs, np.mean(members, axis=0))
    # the embeddings here are noise, so two of the three members guess: the pixels still carry it past chance
    assert pool_accuracy(d.probs, y, idx) > 0.25
