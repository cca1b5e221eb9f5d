"""Per-image augmentation with torchvision transforms v2, on the cached uint8 tensors.

``basic``: horizontal flip + shift (random crop of the edge-padded image), the cheap standard recipe for
small images. ``light``: horizontal flip + a small random affine (rotate ±10°, shift ±10 %, zoom 0.9–1.1) — the classic
recipe. ``strong``: flip + shift, TrivialAugmentWide, then RandomErasing. Every pipeline ends in float32
in [0, 1]; normalisation happens inside the model wrapper so attacks work in pixel space.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def make_transform(kind: str, *, size: tuple[int, int]) -> v2.Transform | None:
    """The per-sample train transform for ``kind`` (None for ``none``: the batch is converted in one go)."""
    if kind == "none":
        return None
    pad = max(1, round(min(size) / 12))
    to_float = v2.ToDtype(torch.float32, scale=True)
    if kind == "basic":
        return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomCrop(size, padding=pad, padding_mode="edge"),
                           to_float])
    if kind == "light":
        return v2.Compose([v2.RandomHorizontalFlip(),
                           v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)), to_float])
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomCrop(size, padding=pad, padding_mode="edge"),
                       v2.TrivialAugmentWide(), to_float, v2.RandomErasing(p=0.5, value=0)])


def make_batch_mix(*, mixup: float, cutmix: float, num_classes: int) -> v2.Transform | None:
    """MixUp and/or CutMix on a whole batch (soft labels); None when both are off."""
    mixes: list[v2.Transform] = []
    if mixup > 0:
        mixes.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        mixes.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
