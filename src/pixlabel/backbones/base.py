"""A backbone: an image model cut at its pre-logits features, with the preprocessing it expects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class Backbone:
    """``module`` maps a normalised batch ``(B, 3, S, S)`` to pre-logits features ``(B, D)``."""

    name: str
    module: nn.Module
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_id: str  # identifies the weights, so caches never mix two different models

    @property
    def cache_key(self) -> str:
        safe = self.name.replace("/", "_").replace(":", "_")
        return f"{safe}-{self.image_size}px-{self.weights_id[:12]}"

    @property
    def dim(self) -> int:
        with torch.inference_mode():
            out = self.module(torch.zeros(1, 3, self.image_size, self.image_size))
        return int(out.shape[1])


def state_dict_id(state: dict[str, torch.Tensor]) -> str:
    """A content hash of a state dict (names, shapes and a sample of values) — cheap even for big models."""
    h = hashlib.blake2b(digest_size=16)
    for key, value in state.items():
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        flat = value.detach().reshape(-1)
        if flat.numel():
            sample = flat[:: max(1, flat.numel() // 64)].float().cpu().numpy().tobytes()
            h.update(sample)
    return h.hexdigest()


class PreLogits(nn.Module):
    """Wraps a timm model so ``forward`` returns ``forward_head(pre_logits=True)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model: Any = model  # a timm model: forward_features/forward_head are not on nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)  # (B, D)
