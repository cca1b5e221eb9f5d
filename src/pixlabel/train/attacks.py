"""FGSM and PGD (L-inf) in [0, 1] pixel space with captum's robust module, on any PyTorch classifier.

The network expects normalised input, so :class:`PixelSpace` puts ``(x - mean) / std`` in front of it:
``eps`` is then a radius on raw pixel intensities (eps=0.1 moves each pixel by at most 10 % of its range)
and adversarial images stay valid images (clipped to [0, 1]).

Example::

    net = PixelSpace(module, spec.mean, spec.std).eval()
    x_adv = perturb(net, x01, y, kind="pgd", eps=0.1, steps=10)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn


class PixelSpace(nn.Module):
    """``net`` behind its input normalisation: takes ``(N, C, h, w)`` floats in [0, 1]."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, kind: str, eps: float, steps: int = 10,
            bf16: bool = False) -> torch.Tensor:
    """Adversarial versions of ``x`` (pixels in [0, 1]) that raise the loss on labels ``y``.

    ``kind``: ``fgsm`` (one signed-gradient step of size eps) or ``pgd`` (``steps`` steps of 2.5·eps/steps
    from a random start in the eps-ball, Madry et al. 2018). The model's train/eval mode is kept; call it in
    eval mode so batch-norm statistics are not touched by the attack.
    """
    from captum.robust import FGSM, PGD

    def forward(inp: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            return model(inp).float()

    with warnings.catch_warnings():  # captum notes that it set requires_grad on the input itself
        warnings.filterwarnings("ignore", message="Input Tensor", category=UserWarning)
        return _perturb(FGSM, PGD, forward, x, y, kind=kind, eps=eps, steps=steps)


def _perturb(fgsm: Any, pgd: Any, forward: Any, x: torch.Tensor, y: torch.Tensor, *, kind: str, eps: float,
             steps: int) -> torch.Tensor:
    if kind == "fgsm":
        return fgsm(forward, lower_bound=0.0, upper_bound=1.0).perturb(x, epsilon=eps, target=y).detach()
    if kind == "pgd":
        return pgd(forward, lower_bound=0.0, upper_bound=1.0).perturb(
            x, radius=eps, step_size=2.5 * eps / steps, step_num=steps, target=y, random_start=True).detach()
    raise ValueError(f"unknown attack {kind!r}; expected fgsm or pgd")
