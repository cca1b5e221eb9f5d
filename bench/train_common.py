"""Shared by the train_* benchmarks: Fashion-MNIST arrays, a seeded fit on arrays, test-set scoring."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixlabel.datasets import fashion_mnist
from pixlabel.models.arch import build_model
from pixlabel.models.spec import ModelSpec, load_model
from pixlabel.train.attacks import PixelSpace
from pixlabel.train.config import TrainConfig
from pixlabel.train.loop import Arrays, TrainResult, fit, predict_logits, use_bf16
from pixlabel.train.run import choose_spec

OUT = Path(__file__).parent / "out"


def fmnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train (60000,1,28,28) uint8, y_train, x_test (10000,...), y_test, classes)."""
    ds = fashion_mnist()
    x = ds.images[:, None]
    return x[:60000], ds.labels[:60000], x[60000:], ds.labels[60000:], ds.classes


def fit_arrays(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], **options: Any
               ) -> tuple[TrainResult, torch.nn.Module, ModelSpec]:
    """Train the default small-image model on uint8 arrays exactly as ``pixlabel train`` would."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(images=".", out=tmp, **{"val_fraction": 0.0, "seed": 0, **options})
        spec = choose_spec(cfg, classes, tuple(x.shape[2:]), x.shape[1] == 1)
        flat = x.reshape(len(x), x.shape[1], -1).astype(np.float32) / 255
        spec = dataclasses.replace(spec, mean=tuple(float(v) for v in flat.mean(axis=(0, 2))),
                                   std=tuple(float(v) for v in flat.std(axis=(0, 2))))
        torch.manual_seed(cfg.seed)
        result = fit(build_model(spec), spec, Arrays(x, y), None, cfg)
        module, spec = load_model(tmp)
    return result, module, spec


def predict(module: torch.nn.Module, spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    return predict_logits(PixelSpace(module, spec.mean, spec.std), x, bf16=use_bf16("auto")).argmax(1)
