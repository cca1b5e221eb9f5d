"""Backbones: pretrained image models that turn images into embeddings."""

from pixlabel.backbones.base import Backbone
from pixlabel.backbones.registry import DEFAULT_BACKBONE, create_backbone

__all__ = ["Backbone", "DEFAULT_BACKBONE", "create_backbone"]
