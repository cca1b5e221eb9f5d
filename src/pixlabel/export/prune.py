"""Magnitude pruning with ``torch.nn.utils.prune``, made permanent, with an optional short fine-tune.

Unstructured (L1): the smallest ``amount`` of each conv/linear weight tensor is set to zero. Structured
(Ln, n=2, dim 0): whole output channels (conv filters / linear rows) with the smallest norm are zeroed.
``prune.remove`` then bakes the mask into the weights, so the module saves and exports like any other.
Dense ONNX kernels do not skip zeros: pruning shrinks the *compressed* file and, with fine-tuning, keeps
accuracy; speed only changes when zeroed channels are physically removed (not done here).

Example::

    pruned = prune_module(net, amount=0.3, structured=False)
    sparsity(pruned)          # ≈ 0.3 of prunable weights are zero
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _prunable(module: Any) -> list[tuple[Any, str]]:
    from torch import nn

    # the final classifier stays dense: it is tiny and every class row matters
    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if len(layers) > 1 and isinstance(layers[-1], nn.Linear):
        layers = layers[:-1]
    return [(m, "weight") for m in layers]


def prune_module(module: Any, *, amount: float, structured: bool = False) -> Any:
    """A pruned copy of ``module`` (the input is untouched). ``amount`` in (0, 1): fraction per layer."""
    from torch.nn.utils import prune

    if not 0.0 < amount < 1.0:
        raise ValueError(f"prune amount must be in (0, 1), got {amount}")
    pruned = copy.deepcopy(module)
    for layer, name in _prunable(pruned):
        if structured:
            prune.ln_structured(layer, name, amount=amount, n=2, dim=0)
        else:
            prune.l1_unstructured(layer, name, amount=amount)
        prune.remove(layer, name)  # weight = weight_orig * mask, permanently; no hooks left behind
    return pruned.eval()


def sparsity(module: Any) -> float:
    """Fraction of zero weights over the prunable layers (conv and linear weights, classifier excluded)."""
    total = zeros = 0
    for layer, name in _prunable(module):
        w = getattr(layer, name).detach()
        total += w.numel()
        zeros += int((w == 0).sum())
    return zeros / max(total, 1)


def fine_tune(module: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 1, lr: float = 1e-3,
              batch_size: int = 64, seed: int = 0) -> Any:
    """Train a pruned ``module`` a little on preprocessed ``x`` ``(N, C, h, w)`` with labels ``y`` ``(N,)``,
    keeping pruned weights at zero (gradients of zeroed weights are masked). Returns the module in eval."""
    import torch
    from torch.nn import functional as F

    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"fine-tune needs as many labels as images, got {len(x)} images and {len(y)} labels")
    masks = {id(getattr(layer, n)): (getattr(layer, n) != 0).float() for layer, n in _prunable(module)}
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(y, np.int64))
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            F.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()
            with torch.no_grad():  # Adam moves zeroed weights off zero; put them back
                for p in module.parameters():
                    if id(p) in masks:
                        p.mul_(masks[id(p)])
    return module.eval()


def accuracy(predict: Any, x: np.ndarray, y: Sequence[int] | np.ndarray) -> float:
    """Top-1 accuracy of ``predict(x) -> (N, K)`` scores on preprocessed ``x``."""
    scores = predict(x)
    return float((np.asarray(scores).argmax(1) == np.asarray(y)).mean())
