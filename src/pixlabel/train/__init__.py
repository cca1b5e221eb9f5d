"""Train a classifier on labeled images: ``train_model(TrainConfig(...))`` (the ``pixlabel train`` command).

Modules: ``config`` (options), ``data`` (labels → decoded uint8 cache), ``augment`` (transforms v2),
``losses`` (soft-target CE/focal with class and confidence weights), ``attacks`` (FGSM/PGD via captum),
``loop`` (epochs, validation, checkpoints, resume), ``run`` (files in, model directory out), ``report``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy: `pixlabel --help` imports every command's module; torch must not load until a command runs.
_EXPORTS = {
    "TrainConfig": "pixlabel.train.config", "TrainResult": "pixlabel.train.loop", "train_model": "pixlabel.train.run",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
