"""Evaluate a trained classifier (``pixlabel eval``): sklearn metrics, ECE, optional FGSM/PGD robust
accuracy, predictions.csv and an HTML report. Named ``evaluate`` so it does not shadow the builtin ``eval``."""

from pixlabel.evaluate.metrics import classification_metrics
from pixlabel.evaluate.run import EvalConfig, evaluate_model

__all__ = ["EvalConfig", "classification_metrics", "evaluate_model"]
