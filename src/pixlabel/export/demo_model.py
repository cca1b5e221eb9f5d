"""A quickly trained SmallCNN model directory, for benchmarks and tests of export and serving.

A thin call of pixlabel's training loop with fixed settings, so export and serving are measured on a
network that has learned something, not on random weights (``pixlabel train`` is the user-facing command).

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
    """Train SmallCNN on ``(N, h, w)`` uint8 grayscale images with pixlabel's own training loop
    (:func:`pixlabel.train.loop.fit`, flip/shift augmentation, no validation split); returns
    ``(module in eval mode, spec)``."""
    import tempfile

    from pixlabel.models.arch import build_model
    from pixlabel.models.spec import load_model
    from pixlabel.train.config import TrainConfig
    from pixlabel.train.loop import Arrays, fit

    h, w = images.shape[1:3]
    spec = ModelSpec(arch="smallcnn", classes=tuple(classes), image_size=(h, w), in_chans=1,
                     mean=FMNIST_MEAN, std=FMNIST_STD, arch_options={"width": width})
    with tempfile.TemporaryDirectory(prefix="pixlabel-demo-model-") as tmp:
        config = TrainConfig(images=".", out=tmp, epochs=epochs, width=width, batch_size=batch_size, lr=lr,
                             augment="basic", val_fraction=0.0, seed=seed)
        fit(build_model(spec), spec, Arrays(np.asarray(images)[:, None], np.asarray(labels, np.int64)), None,
            config)
        net, spec = load_model(tmp)
    return net, spec
