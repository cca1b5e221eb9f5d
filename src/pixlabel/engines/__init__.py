"""Executors for the image-parallel stages (embedding): the same backbone code, run here or on Ray.

``local`` runs :func:`pixlabel.backbones.embed.embed_files` in this process. ``ray`` runs the same
``decode_for_model`` + ``Embedder`` over Ray Data ``map_batches`` with an actor pool (one model per actor),
on a cluster at ``--ray-address`` or on a local Ray started for the run. Everything after the embeddings
(kNN graph, labeler fit, calibration, store) stays on the driver: see ``docs/scaling.md``.

Example::

    engine = get_engine("ray", address="ray://head:10001")
    result = engine.embed(files, create_backbone(), cache_dir=Path("ws/cache"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pixlabel.backbones.base import Backbone
from pixlabel.backbones.embed import EmbedResult
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageFile

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str

    def embed(self, files: Sequence[ImageFile], backbone: Backbone, *, cache_dir: Path | None = None,
              batch_size: int = 64, workers: int = 2, precision: str = "auto",
              max_pixels: int = DEFAULT_MAX_PIXELS) -> EmbedResult:
        """Embeddings of ``files`` in input order; unreadable files come back in ``errors``."""
        ...


def get_engine(name: str = "local", *, address: str | None = None, actors: int | None = None) -> Engine:
    """``local`` or ``ray`` (``address``: a Ray cluster, e.g. ``ray://head:10001`` or ``auto``; None starts
    a local Ray; ``actors``: embedding actors, default one per CPU of the cluster)."""
    if name == "local":
        if address is not None:
            raise InputError("--ray-address needs --engine ray")
        from pixlabel.engines.local import LocalEngine

        return LocalEngine()
    if name == "ray":
        from pixlabel.engines.ray_engine import RayEngine

        return RayEngine(address=address, actors=actors)
    raise InputError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
