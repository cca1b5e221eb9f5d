"""Explain a trained classifier's decisions (``pixlabel explain``): captum Grad-CAM, Integrated Gradients,
LIME and Kernel SHAP as PNG heat-map overlays."""

from pixlabel.explain.methods import METHODS, attribute
from pixlabel.explain.run import Explanation, explain_images

__all__ = ["METHODS", "Explanation", "attribute", "explain_images"]
