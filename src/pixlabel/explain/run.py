"""``explain_images(model, images, method=..., out=...)``: one PNG overlay per image.

``out`` is a folder (``<stem>_<method>.png`` per image) or, for a single image, a ``.png`` file.
Unreadable images are listed and skipped. Example::

    written = explain_images("runs/m", [Path("a.png")], method="gradcam", out=Path("a_cam.png"))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixlabel.errors import InputError
from pixlabel.explain.methods import METHODS, attribute
from pixlabel.explain.overlay import overlay, save_png
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.progress import progress

log = logging.getLogger("pixlabel.explain")


@dataclass(frozen=True)
class Explanation:
    image: Path
    png: Path
    predicted: str
    probability: float
    heat: np.ndarray  # (h, w) at the model's input size, max 1


def explain_images(model: Path | str, images: list[Path], *, method: str, out: Path, target: str | None = None,
                   n_samples: int = 200, seed: int = 0) -> tuple[list[Explanation], list[tuple[str, str]]]:
    """Explanations written as PNGs, and ``(path, reason)`` for images that could not be read."""
    from pixlabel.models.spec import load_model

    if method not in METHODS:
        raise InputError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    if Path(model).suffix.lower() == ".onnx":
        raise InputError(f"{model}: explanations need gradients, and an ONNX model has no gradients; "
                         "explain the model directory it was exported from instead")
    if not images:
        raise InputError("give at least one IMAGE to explain")
    module, spec = load_model(model)
    target_idx = None
    if target is not None:
        if target not in spec.classes:
            raise InputError(f"--target {target!r} is not a class of {model} ({', '.join(spec.classes)})")
        target_idx = spec.classes.index(target)
    single_file = len(images) == 1 and out.suffix.lower() == ".png"
    done: list[Explanation] = []
    errors: list[tuple[str, str]] = []
    for path in progress(images, desc=f"explain ({method})", unit="img"):
        try:
            im = load_rgb(path)
        except ImageDecodeError as exc:
            errors.append((str(path), exc.reason))
            log.warning("%s: %s; skipped", path, exc.reason)
            continue
        heat, cls, p = attribute(module, spec, im, method=method, target=target_idx, n_samples=n_samples, seed=seed)
        png = out if single_file else out / f"{path.stem}_{method}.png"
        save_png(overlay(im, heat, caption=f"{spec.classes[cls]} {p:.0%} ({method})"), png)
        done.append(Explanation(path, png, spec.classes[cls], p, heat))
    if not done:
        raise InputError(f"none of the {len(images)} images could be read: {errors[0][0]}: {errors[0][1]}")
    return done, errors
