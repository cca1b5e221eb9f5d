"""Attributions with captum: where in the image the model looks for its predicted (or given) class.

``gradcam`` (LayerGradCam on the last spatial layer, upsampled), ``ig`` (IntegratedGradients from a black
image), ``lime`` and ``shap`` (Lime / KernelShap over a grid of square super-pixels, black as "absent").
All return a non-negative ``(h, w)`` heat map at the model's input size, normalised to max 1.

Example::

    module, spec = load_model("runs/m")
    heat, cls, p = attribute(module, spec, pil_image, method="gradcam")
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixlabel.errors import InputError
from pixlabel.models.spec import ModelSpec

METHODS = ("gradcam", "ig", "lime", "shap")


def last_spatial_layer(module: nn.Module, sample: torch.Tensor) -> nn.Module:
    """The Grad-CAM layer: the last module (in forward order) whose 4-D output map is at least 7 pixels on
    its short side (or half the input's, for inputs under 14 px) — the last conv block before global pooling
    for usual inputs; for tiny images the last block that still resolves where things are."""
    seen: list[tuple[nn.Module, int]] = []
    hooks = []

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1:
            seen.append((mod, min(out.shape[2], out.shape[3])))

    for m in module.modules():
        if m is not module:
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(sample)
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise InputError("gradcam needs a convolutional model (no layer keeps a spatial map)")
    need = min(7, min(sample.shape[2], sample.shape[3]) // 2)
    fine = [m for m, side in seen if side >= need]
    return fine[-1] if fine else seen[-1][0]


def grid_mask(h: int, w: int, *, cells: int = 8) -> torch.Tensor:
    """Feature ids of a ``cells``×``cells`` grid of super-pixels, shape (1, 1, h, w)."""
    rows = np.minimum(np.arange(h) * cells // h, cells - 1)
    cols = np.minimum(np.arange(w) * cells // w, cells - 1)
    return torch.from_numpy(rows[:, None] * cells + cols[None, :]).long()[None, None]


def attribute(module: nn.Module, spec: ModelSpec, image: Image.Image, *, method: str, target: int | None = None,
              n_samples: int = 200, cells: int = 8, seed: int = 0) -> tuple[np.ndarray, int, float]:
    """``(heat (h, w) in [0, 1], explained class index, its probability)`` for one image."""
    from captum.attr import IntegratedGradients, KernelShap, LayerAttribution, LayerGradCam, Lime

    if method not in METHODS:
        raise InputError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    module = module.eval()
    x = torch.from_numpy(spec.preprocess([image]))
    with torch.no_grad():
        probs = torch.softmax(module(x).float(), dim=1)[0]
    cls = int(probs.argmax()) if target is None else target
    black = torch.from_numpy(spec.preprocess([Image.new("RGB", image.size)]))  # "absent" = a black image
    torch.manual_seed(seed)
    if method == "gradcam":
        layer = last_spatial_layer(module, x)
        cam = LayerGradCam(module, layer).attribute(x, target=cls, relu_attributions=True)
        heat = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    elif method == "ig":
        heat = IntegratedGradients(module).attribute(x, baselines=black, target=cls, n_steps=32).abs()
    else:
        mask = grid_mask(*x.shape[2:], cells=cells).expand(1, x.shape[1], -1, -1)
        explainer = Lime(module) if method == "lime" else KernelShap(module)
        heat = explainer.attribute(x, baselines=black, target=cls, feature_mask=mask, n_samples=n_samples,
                                   perturbations_per_eval=32).clamp_min(0)
    h = heat.detach().float().sum(dim=1)[0].numpy()
    h = np.clip(h, 0, None)
    peak = float(h.max())
    return (h / peak if peak > 0 else h), cls, float(probs[cls])
