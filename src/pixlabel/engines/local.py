"""The default engine: embed in this process (threads decode while the model runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pixlabel.backbones.base import Backbone
from pixlabel.backbones.embed import EmbedResult, embed_files
from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageFile


class LocalEngine:
    name = "local"

    def embed(self, files: Sequence[ImageFile], backbone: Backbone, *, cache_dir: Path | None = None,
              batch_size: int = 64, workers: int = 2, precision: str = "auto",
              max_pixels: int = DEFAULT_MAX_PIXELS) -> EmbedResult:
        return embed_files(files, backbone, cache_dir=cache_dir, batch_size=batch_size, workers=workers,
                           precision=precision, max_pixels=max_pixels)
