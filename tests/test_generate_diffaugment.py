"""DiffAugment: shifts and holes that are random per image, reproducible, and let gradients through."""

from __future__ import annotations

import pytest
import torch

from pixlabel.generate.diffaugment import cutout, diff_augment, translate


def test_translate_shifts_whole_images_by_at_most_the_ratio_and_fills_with_zeros() -> None:
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 7, 7] = 1.0  # one bright pixel per image
    out = translate(x, generator=torch.Generator().manual_seed(0), ratio=0.125)  # up to 2 px
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(64))  # moved, not lost or duplicated
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 16, where % 16
    assert rows.min() >= 5 and rows.max() <= 9 and cols.min() >= 5 and cols.max() <= 9
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # random per image, not one shift
    edge = translate(torch.ones(64, 1, 16, 16), generator=torch.Generator().manual_seed(1))
    assert (edge == 0).any() and set(edge.unique().tolist()) <= {0.0, 1.0}


def test_cutout_zeroes_one_square_per_image_of_the_given_size() -> None:
    out = cutout(torch.ones(32, 3, 16, 16), generator=torch.Generator().manual_seed(0), ratio=0.5)
    holes = (out == 0).all(dim=1)  # (B, H, W): all channels cut together
    assert ((out == 0) | (out == 1)).all()
    assert holes.flatten(1).sum(1).max() == 64  # an 8x8 square when it lies inside the image
    assert (holes.flatten(1).sum(1) >= 16).all()  # a square centred at a corner still covers a quarter


def test_diff_augment_is_reproducible_differentiable_and_checks_the_policy() -> None:
    x = torch.rand(8, 1, 16, 16, requires_grad=True)
    a = diff_augment(x, ("translation", "cutout"), generator=torch.Generator().manual_seed(3))
    b = diff_augment(x, ("translation", "cutout"), generator=torch.Generator().manual_seed(3))
    c = diff_augment(x, ("translation", "cutout"), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and 0 < x.grad.sum() < x.numel()  # gradient flows to the pixels still visible
    assert diff_augment(x, (), generator=torch.Generator()) is x
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'color'"):
        diff_augment(x, ("color",), generator=torch.Generator())
