"""Train a classifier on labeled images: ``train_model(TrainConfig(...))`` (the ``pixlabel train`` command).

Modules: ``config`` (options), ``data`` (labels → decoded uint8 cache), ``augment`` (transforms v2),
``losses`` (soft-target CE/focal with class and confidence weights), ``attacks`` (FGSM/PGD via captum),
``loop`` (epochs, validation, checkpoints, resume), ``run`` (files in, model directory out), ``report``.
"""

from pixlabel.train.config import TrainConfig
from pixlabel.train.loop import TrainResult
from pixlabel.train.run import train_model

__all__ = ["TrainConfig", "TrainResult", "train_model"]
