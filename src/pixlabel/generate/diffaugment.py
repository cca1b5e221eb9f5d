"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same
random translation and cutout are applied to real *and* generated images before the discriminator sees them,
with differentiable torch ops so the generator still gets gradients. The discriminator can no longer memorise
the few real images of a class, which is what lets a GAN learn from tens of images per class.

Randomness comes from an explicit ``torch.Generator`` so a resumed run augments exactly as an uninterrupted one.

>>> g = torch.Generator().manual_seed(0)
>>> diff_augment(torch.zeros(4, 1, 32, 32), ("translation", "cutout"), generator=g).shape
torch.Size([4, 1, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout")


def translate(x: torch.Tensor, *, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, up to ``ratio`` of its size; vacated pixels are 0."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=generator)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=generator)
    # indices into a copy with a 1-px zero border: anything shifted in from outside reads that border
    iy = (torch.arange(h)[None, :, None] + dy + 1).clamp_(0, h + 1)  # (B, H, 1)
    ix = (torch.arange(w)[None, None, :] + dx + 1).clamp_(0, w + 1)  # (B, 1, W)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[torch.arange(b)[:, None, None], iy, ix].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, *, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio`` x size per image, centred anywhere (it may hang over the edge)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(-(ch // 2), h - ch // 2 + 1, (b, 1, 1), generator=generator)
    left = torch.randint(-(cw // 2), w - cw // 2 + 1, (b, 1, 1), generator=generator)
    ys, xs = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    hole = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], *, generator: torch.Generator) -> torch.Tensor:
    """Apply each augmentation of ``policy`` (names from ``POLICIES``) in order; ``()`` returns ``x`` as is."""
    for name in policy:
        if name == "translation":
            x = translate(x, generator=generator)
        elif name == "cutout":
            x = cutout(x, generator=generator)
        else:
            raise ValueError(f"unknown DiffAugment policy {name!r}; known: {', '.join(POLICIES)}")
    return x
