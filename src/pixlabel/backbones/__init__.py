"""Backbones: pretrained image models that turn images into embeddings."""

from __future__ import annotations

from typing import Any

from pixlabel.backbones.registry import DEFAULT_BACKBONE, create_backbone

__all__ = ["Backbone", "DEFAULT_BACKBONE", "create_backbone"]


def __getattr__(name: str) -> Any:  # Backbone pulls in torch: load it on first use only
    if name == "Backbone":
        from pixlabel.backbones.base import Backbone

        return Backbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
