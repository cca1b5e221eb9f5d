"""Classification losses on soft targets (so MixUp/CutMix and label smoothing share one code path).

``focal`` down-weights easy examples by ``(1 - p)^gamma`` (Lin et al. 2017); ``class_weights`` multiply each
example by its class weight; ``sample_weight`` (label confidence) likewise. The mean is weighted, as
``torch.nn.functional.cross_entropy`` does with ``weight=``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def balanced_class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """``n / (K * n_k)`` per class (sklearn's "balanced"); absent classes get 0."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.as_tensor(w, dtype=torch.float32)


def soft_loss(
    logits: torch.Tensor, target: torch.Tensor, *, smoothing: float = 0.0, gamma: float = 0.0,
    class_weights: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted mean of (focal) cross-entropy against ``target`` ``(N, K)`` probabilities."""
    k = logits.shape[1]
    logp = F.log_softmax(logits.float(), dim=1)
    if smoothing > 0:
        target = target * (1.0 - smoothing) + smoothing / k
    if gamma > 0:
        per = -(target * (1.0 - logp.exp()).pow(gamma) * logp).sum(dim=1)
    else:
        per = -(target * logp).sum(dim=1)
    w = torch.ones_like(per)
    if class_weights is not None:
        w = w * (target @ class_weights)
    if sample_weight is not None:
        w = w * sample_weight
    return (per * w).sum() / w.sum().clamp_min(1e-12)
