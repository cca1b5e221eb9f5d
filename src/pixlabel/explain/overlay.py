"""Heat map over image as a PNG: matplotlib colormap blended onto the image, upscaled so small images show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def overlay(image: Image.Image, heat: np.ndarray, *, alpha: float = 0.5, min_side: int = 224,
            caption: str | None = None) -> Image.Image:
    """``image`` (any size) with ``heat`` (h, w) in [0, 1] coloured by ``jet`` on top."""
    from matplotlib import colormaps

    scale = max(1, int(np.ceil(min_side / max(1, min(image.size)))))
    size = (image.width * scale, image.height * scale)
    base = image.convert("RGB").resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR)
    hm = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    colored = colormaps["jet"](np.asarray(hm, np.float32) / 255.0)[..., :3]
    blend = (1 - alpha) * np.asarray(base, np.float32) / 255.0 + alpha * colored
    out = Image.fromarray((np.clip(blend, 0, 1) * 255).astype(np.uint8))
    if caption:
        draw = ImageDraw.Draw(out)
        draw.rectangle((0, 0, out.width, 14), fill=(0, 0, 0))
        draw.text((3, 1), caption, fill=(255, 255, 255))
    return out


def save_png(im: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    im.save(tmp, format="PNG")
    tmp.replace(path)
