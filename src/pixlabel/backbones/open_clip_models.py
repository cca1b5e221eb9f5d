"""open_clip image-text models: image and text embeddings in one space, for zero-shot labels from class names.

``pretrained`` is an open_clip tag (downloaded from the hub, needs internet) or a local checkpoint file
(what offline users pass: e.g. the ``open_clip_pytorch_model.bin`` of a hub repo, copied by hand).
The tokenizer of the classic CLIP text towers is a BPE whose vocabulary ships inside the open_clip wheel,
so it works offline; towers with a Hugging Face tokenizer (SigLIP, hf-hub text models) need the hub.

>>> clip = load_open_clip("ViT-B-32", pretrained="laion2b_s34b_b79k")  # doctest: +SKIP
>>> clip.encode_texts(["a photo of a cat."]).shape  # doctest: +SKIP
(1, 512)
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixlabel.backbones.base import Backbone, state_dict_id
from pixlabel.errors import PixlabelError

log = logging.getLogger(__name__)

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
OFFLINE_HINT = (
    "offline users must pass a local checkpoint path as pretrained (the open_clip_pytorch_model.bin "
    "or .safetensors file of this architecture, copied from a machine with internet)"
)


class OpenClipModel:
    """A loaded open_clip model with its own inference preprocessing and tokenizer.

    Embeddings are float32 numpy arrays with unit-length rows, so a dot product is a cosine similarity.
    """

    def __init__(self, *, arch: str, pretrained: str, model: nn.Module, preprocess: Callable[[Any], Any],
                 tokenizer: Callable[[list[str]], torch.Tensor]):
        self.arch = arch
        self.pretrained = pretrained
        self.model: Any = model.eval()  # an open_clip CLIP: encode_image/encode_text are not on nn.Module
        self.preprocess = preprocess  # open_clip's own val transform: resize, centre crop, normalise
        self.tokenizer = tokenizer
        cfg = dict(getattr(self.model.visual, "preprocess_cfg", {}))
        size = cfg.get("size", getattr(self.model.visual, "image_size", 224))
        self.image_size: tuple[int, int] = (int(size), int(size)) if isinstance(size, int) else (
            int(size[0]), int(size[1]))
        self.mean = tuple(float(v) for v in cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)))
        self.std = tuple(float(v) for v in cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
        self.weights_id = state_dict_id(self.model.state_dict())

    @property
    def dim(self) -> int:
        """``D``: the size of the shared image-text embedding."""
        return int(self.encode_texts(["a photo."]).shape[1])

    def encode_images(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 RGB → ``(B, D)`` float32 unit rows, preprocessed exactly as open_clip does.

        >>> clip.encode_images(np.zeros((2, 64, 64, 3), np.uint8)).shape  # doctest: +SKIP
        (2, 512)
        """
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                or images.shape[-1] != 3:
            got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
            raise ValueError(f"encode_images expects a uint8 array (B, H, W, 3), got {got}")
        _check_batch_size(batch_size)
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                x = torch.stack([self.preprocess(Image.fromarray(img)) for img in chunk])  # (b, 3, h, w)
                out.append(self.model.encode_image(x, normalize=True).float().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32)

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """``T`` strings → ``(T, D)`` float32 unit rows.

        >>> clip.encode_texts(["a photo of a cat.", "a photo of a dog."]).shape  # doctest: +SKIP
        (2, 512)
        """
        if isinstance(texts, str) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"encode_texts expects a list of non-empty strings, got {texts!r:.200}")
        if not texts:
            raise ValueError("encode_texts needs at least one text")
        _check_batch_size(batch_size)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[start:start + batch_size]))  # (b, context_length)
                out.append(self.model.encode_text(tokens, normalize=True).float().numpy())
        return np.concatenate(out).astype(np.float32)

    def as_backbone(self) -> Backbone:
        """The image tower as a :class:`Backbone`, so ``embed_files`` can embed (and cache) a folder with it.

        ``embed_files`` squashes images to a square instead of open_clip's shortest-side resize and centre
        crop; for roughly square photos the embeddings are nearly identical.
        """
        h, w = self.image_size
        if h != w:
            raise PixlabelError(f"open_clip {self.arch}: non-square input {h}x{w} is not supported by embed")
        return Backbone(name=f"open_clip/{self.arch}", module=_ImageTower(self.model), image_size=h,
                        mean=_rgb(self.mean), std=_rgb(self.std), weights_id=self.weights_id)


class _ImageTower(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model: Any = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x, normalize=True)  # (B, D)


def _rgb(v: tuple[float, ...]) -> tuple[float, float, float]:
    return (v[0], v[0], v[0]) if len(v) == 1 else (v[0], v[1], v[2])


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_arch(arch: str) -> None:
    import open_clip

    known = open_clip.list_models()
    if arch in known:
        return
    close = difflib.get_close_matches(arch, known, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise PixlabelError(
        f"unknown open_clip architecture {arch!r}.{hint} List them with "
        "`python -c \"import open_clip; print(open_clip.list_models())\"`"
    )


def load_open_clip(arch: str = DEFAULT_ARCH, *, pretrained: str = DEFAULT_PRETRAINED,
                   cache_dir: Path | None = None) -> OpenClipModel:
    """Build open_clip ``arch`` with weights from a hub tag or a local checkpoint file.

    ``cache_dir`` is where hub downloads go (open_clip's default cache when None).

    >>> load_open_clip("ViT-B-32", pretrained="laion2b_s34b_b79k").arch  # doctest: +SKIP
    'ViT-B-32'
    >>> load_open_clip("ViT-B-32", pretrained="/models/vit-b-32-laion2b.bin").pretrained  # doctest: +SKIP
    '/models/vit-b-32-laion2b.bin'
    """
    import open_clip

    if not isinstance(arch, str) or not arch.strip():
        raise PixlabelError(f"open_clip architecture must be a non-empty string, got {arch!r}")
    if not isinstance(pretrained, str) or not pretrained.strip():
        raise PixlabelError(
            f"pretrained must be an open_clip tag or a checkpoint file path, got {pretrained!r}")
    _check_arch(arch)
    is_tag = bool(open_clip.get_pretrained_cfg(arch, pretrained))
    if not is_tag and not Path(pretrained).is_file():
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise PixlabelError(
            f"pretrained {pretrained!r} for open_clip {arch}: no such checkpoint file, and not a known tag "
            f"(tags for {arch}: {', '.join(tags) or 'none'})"
        )
    if is_tag:
        log.info("downloading open_clip %s weights %r (offline? pass a local checkpoint path)", arch, pretrained)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=pretrained, cache_dir=None if cache_dir is None else str(cache_dir))
    except Exception as exc:  # hub and torch.load failures come as many types; the user needs the reason
        if is_tag:
            raise PixlabelError(
                f"cannot download open_clip {arch} weights {pretrained!r} ({type(exc).__name__}: {exc}); "
                f"{OFFLINE_HINT}"
            ) from exc
        raise PixlabelError(
            f"pretrained {pretrained}: cannot load it as an open_clip {arch} checkpoint "
            f"({type(exc).__name__}: {exc}); is it a checkpoint of this architecture?"
        ) from exc
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as exc:  # Hugging Face tokenizers are fetched from the hub
        raise PixlabelError(
            f"cannot load the tokenizer of open_clip {arch} ({type(exc).__name__}: {exc}); it needs the "
            "Hugging Face hub: use an architecture with the built-in CLIP tokenizer (e.g. ViT-B-32) offline"
        ) from exc
    return OpenClipModel(arch=arch, pretrained=pretrained, model=model, preprocess=preprocess,
                         tokenizer=tokenizer)
