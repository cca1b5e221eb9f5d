"""Trained classifiers on disk: one contract shared by train, eval, explain, export and serve.

A model directory holds ``model.yaml`` (a :class:`ModelSpec`) and ``weights.pt`` (a state dict).
:func:`load_predictor` opens a model directory or an exported ``.onnx`` file behind one interface.
"""

from pixlabel.models.spec import ModelSpec, Predictor, load_model, load_predictor, save_model

__all__ = ["ModelSpec", "Predictor", "load_model", "load_predictor", "save_model"]
