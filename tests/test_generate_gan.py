"""The conditional GAN: shapes, determinism, exact resume from a checkpoint, refusing foreign checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixlabel.errors import InputError
from pixlabel.generate.gan import GanConfig, load_checkpoint, new_state, sample, save_checkpoint, train

TINY = {"image_size": 16, "channels": 1, "g_width": 8, "d_width": 8, "batch_size": 8, "z_dim": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.integers(0, 60, (n, 1, 16, 16)).astype(np.uint8)
    x[y == 1, :, 4:12, 4:12] = 250
    return x, y


def test_image_size_must_be_a_power_of_two_and_shapes_follow_the_config() -> None:
    with pytest.raises(InputError, match="power of two"):
        GanConfig(classes=("a", "b"), image_size=28)
    for size, ch in ((16, 1), (32, 3)):
        state = new_state(GanConfig(classes=("a", "b", "c"), **{**TINY, "image_size": size, "channels": ch}), seed=0)
        imgs = sample(state, np.array([0, 1, 2, 2]), seed=3)
        assert imgs.shape == (4, ch, size, size) and imgs.dtype == np.uint8
        scores = state.disc(torch.zeros(2, ch, size, size), torch.tensor([0, 2]))
        assert scores.shape == (2,)


def test_resume_continues_exactly_and_sampling_is_deterministic(tmp_path: Path) -> None:
    x, y = toy()
    cfg = GanConfig(classes=("a", "b"), **TINY)
    straight = train(new_state(cfg, seed=1), x, y, steps=6)
    ckpt = tmp_path / "checkpoint.pt"
    half = train(new_state(cfg, seed=1), x, y, steps=3, checkpoint=ckpt)
    assert half.step == 3 and ckpt.is_file()
    resumed = load_checkpoint(ckpt, cfg)
    assert resumed.step == 3
    train(resumed, x, y, steps=6, checkpoint=ckpt)
    for a, b in zip(straight.gen_ema.state_dict().values(), resumed.gen_ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    np.testing.assert_array_equal(sample(resumed, np.array([0, 1]), seed=5), sample(straight, np.array([0, 1]), seed=5))
    assert load_checkpoint(ckpt, cfg).step == 6
    assert not np.array_equal(sample(resumed, np.array([0, 1]), seed=5), sample(resumed, np.array([0, 1]), seed=6))


def test_checkpoint_of_another_class_list_or_size_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(new_state(GanConfig(classes=("cat", "dog"), **TINY), seed=0), ckpt)
    with pytest.raises(InputError, match=r"trained for classes \[cat, dog\].*have classes \[cat, dog, fox\]"):
        load_checkpoint(ckpt, GanConfig(classes=("cat", "dog", "fox"), **TINY))
    with pytest.raises(InputError, match="image_size 16"):
        load_checkpoint(ckpt, GanConfig(classes=("cat", "dog"), **{**TINY, "image_size": 32}))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt: not a readable pixlabel GAN checkpoint"):
        load_checkpoint(junk, GanConfig(classes=("cat", "dog"), **TINY))


def test_training_balances_classes_and_mismatched_images_are_refused() -> None:
    x, y = toy()
    cfg = GanConfig(classes=("a", "b"), **TINY)
    with pytest.raises(ValueError, match="do not match"):
        train(new_state(cfg, seed=0), x[:, :, :8, :8], y, steps=1)
    state = train(new_state(cfg, seed=0), x, y, steps=2)
    assert state.step == 2 and np.isfinite(list(state.gen.parameters())[0].detach().numpy()).all()


def test_auxiliary_classifier_head_exists_only_when_weighted_and_truncation_narrows_samples() -> None:
    with_ac = new_state(GanConfig(classes=("a", "b", "c"), **TINY, ac_weight=0.5), seed=0)
    score, logits = with_ac.disc.score_and_logits(torch.zeros(4, 1, 16, 16), torch.tensor([0, 1, 2, 0]))
    assert score.shape == (4,) and logits is not None and logits.shape == (4, 3)
    plain = new_state(GanConfig(classes=("a", "b", "c"), **TINY, ac_weight=0.0, augment=()), seed=0)
    assert plain.disc.score_and_logits(torch.zeros(2, 1, 16, 16), torch.tensor([0, 1]))[1] is None
    x, y = toy()
    train(plain, x, y, steps=2)  # the plain projection GAN still trains
    ys = np.zeros(64, np.int64)
    full = sample(with_ac, ys, seed=0).astype(float)
    narrow = sample(with_ac, ys, seed=0, truncation=0.3).astype(float)
    assert narrow.std(axis=0).mean() < full.std(axis=0).mean()  # truncated latents vary the image less
    with pytest.raises(ValueError, match="truncation must be > 0"):
        sample(with_ac, ys, seed=0, truncation=0.0)
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        GanConfig(classes=("a",), augment=("blur",))


def test_checkpoint_of_an_older_version_is_refused_with_its_version(tmp_path: Path) -> None:
    ckpt = tmp_path / "old.pt"
    torch.save({"version": 1, "config": {}}, ckpt)
    with pytest.raises(InputError, match=r"older pixlabel \(version 1"):
        load_checkpoint(ckpt, GanConfig(classes=("cat", "dog"), **TINY))
