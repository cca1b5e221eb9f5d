"""Network architectures by name: ``build_model(spec)`` rebuilds the same network for train and load.

Names: ``smallcnn`` (pixlabel's own small CNN for low-resolution images) and ``timm:NAME`` for any timm
model (``timm:resnet18``, ``timm:tf_efficientnet_lite0`` — the latter pretrained offline).
A new architecture is one factory plus one line in ``ARCHS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixlabel.errors import InputError
from pixlabel.models.spec import ModelSpec


def _smallcnn(spec: ModelSpec, *, pretrained: bool, **opts: Any) -> Any:
    from pixlabel.models.smallcnn import SmallCNN

    return SmallCNN(in_chans=spec.in_chans, num_classes=len(spec.classes), **opts)


def _timm(spec: ModelSpec, *, pretrained: bool, **opts: Any) -> Any:
    import timm

    name = spec.arch.split(":", 1)[1]
    model = timm.create_model(name, pretrained=False, num_classes=len(spec.classes), in_chans=spec.in_chans,
                              **opts)
    if pretrained:
        _load_pretrained_timm(model, name)
    return model


def _load_pretrained_timm(model: Any, name: str) -> None:
    """ImageNet weights for the body (the new head stays random): offline for the default backbone."""
    import timm
    import torch

    from pixlabel.backbones.timm_models import OFFLINE_DEFAULT, lite0_package_state

    if name.split(".")[0] == OFFLINE_DEFAULT:
        state = lite0_package_state()
    else:  # timm's hub download: needs internet
        state = timm.create_model(name, pretrained=True).state_dict()
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    with torch.no_grad():
        model.load_state_dict(fits, strict=False)


ARCHS: dict[str, Callable[..., Any]] = {"smallcnn": _smallcnn, "timm": _timm}


def build_model(spec: ModelSpec, *, pretrained: bool = False) -> Any:
    key = spec.arch.split(":", 1)[0]
    if key not in ARCHS:
        raise InputError(f"unknown model arch {spec.arch!r}; known: smallcnn, timm:NAME")
    return ARCHS[key](spec, pretrained=pretrained, **spec.arch_options)
