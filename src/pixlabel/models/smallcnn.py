"""A small residual CNN for low-resolution images (28–64 px), trainable on 2 CPU cores in minutes."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(i: int, o: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(ch, ch), *_conv_bn(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SmallCNN(nn.Module):
    """conv(w) → [pool → conv(2w) → residual × depth] → [pool → conv(4w) → residual × depth] → global pool →
    dropout → linear. ``depth`` 1 (the default) is the original layout, so models saved before the option
    existed load unchanged."""

    def __init__(self, *, in_chans: int = 3, num_classes: int = 10, width: int = 32, depth: int = 1,
                 dropout: float = 0.3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn(in_chans, w),
            nn.MaxPool2d(2), *_conv_bn(w, 2 * w), *(_Residual(2 * w) for _ in range(depth)),
            nn.MaxPool2d(2), *_conv_bn(2 * w, 4 * w), *(_Residual(4 * w) for _ in range(depth)),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
