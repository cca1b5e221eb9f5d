"""A quickly trained SmallCNN model directory, for benchmarks and tests of export and serving.

The real training command lives elsewhere (``pixlabel train``); this is the minimal loop that makes an
honest model (Fashion-MNIST: ~88-90% after 2 epochs on 2 cores) so export and serving are measured on a
network that has learned something, not on random weights.

Example::

    ds = fashion_mnist()
    net, spec = train_smallcnn(ds.images[:60000], ds.labels[:60000], ds.classes, epochs=2)
    save_model("runs/fmnist", net, spec)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlabel.models.spec import ModelSpec

FMNIST_MEAN, FMNIST_STD = (0.286,), (0.353,)


def gray_to_input(images: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """``(N, h, w)`` uint8 grayscale at the model size → normalised ``(N, 1, h, w)`` float32.

    Same arithmetic as ``spec.preprocess`` on 'L' images of the right size, without PIL per image."""
    x = images.astype(np.float32)[:, None] / 255.0
    return ((x - spec.mean[0]) / spec.std[0]).astype(np.float32)


def train_smallcnn(images: np.ndarray, labels: np.ndarray, classes: Sequence[str], *, epochs: int = 2,
                   width: int = 32, batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> tuple[Any, ModelSpec]:
    """Train SmallCNN on ``(N, h, w)`` uint8 grayscale images; returns ``(module in eval mode, spec)``."""
    import torch
    from torch.nn import functional as F

    from pixlabel.models.arch import build_model

    h, w = images.shape[1:3]
    spec = ModelSpec(arch="smallcnn", classes=tuple(classes), image_size=(h, w), in_chans=1,
                     mean=FMNIST_MEAN, std=FMNIST_STD, arch_options={"width": width})
    torch.manual_seed(seed)
    net = build_model(spec)
    x = torch.from_numpy(gray_to_input(images, spec))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb = x[idx]
            if torch.rand((), generator=g) < 0.5:  # horizontal flip: cheap, label-preserving for clothes
                xb = xb.flip(3)
            opt.zero_grad()
            F.cross_entropy(net(xb), y[idx]).backward()
            opt.step()
            sched.step()
    return net.eval(), spec
