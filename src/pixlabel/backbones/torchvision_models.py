"""torchvision classification models by name, cut before their classifier.

>>> create_torchvision_backbone("resnet18", pretrained=False).dim  # doctest: +SKIP
512
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from torch import nn

from pixlabel.backbones.base import Backbone, state_dict_id
from pixlabel.backbones.timm_models import load_into, load_state_file
from pixlabel.errors import PixlabelError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _classifier_path(model: nn.Module) -> str:
    """Module path of the final linear classifier (``fc``, ``classifier.1``, ``heads.head`` …)."""
    for attr in ("fc", "classifier", "head", "heads"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return attr
        if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
            last_name = list(head.named_children())[-1][0]  # "1" for classifier[1], "head" for vit heads
            return f"{attr}.{last_name}"
    raise PixlabelError(f"cannot find the classifier of torchvision {type(model).__name__} to cut it off")


def _strip_classifier(model: nn.Module, path: str) -> nn.Module:
    """Replace the module at ``path`` by Identity so the output is the pre-logits feature."""
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, nn.Identity())
    return model


def create_torchvision_backbone(
    name: str, *, weights: Path | None = None, image_size: int | None = None, pretrained: bool = True
) -> Backbone:
    """A torchvision classifier without its last linear layer; ``weights`` is a local state dict file."""
    import torchvision

    known = torchvision.models.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        hint = f" Did you mean: {', '.join('torchvision/' + c for c in close)}?" if close else ""
        raise PixlabelError(
            f"unknown torchvision model {name!r}.{hint} "
            "List names with `python -c \"import torchvision; print(torchvision.models.list_models())\"`"
        )
    use_hub = pretrained and weights is None
    if use_hub:
        log.info("downloading pretrained weights for torchvision/%s (offline? pass --weights FILE)", name)
    try:
        model = torchvision.models.get_model(name, weights="DEFAULT" if use_hub else None)
    except Exception as exc:  # download failures come as many types
        raise PixlabelError(
            f"cannot load pretrained weights for torchvision/{name} ({type(exc).__name__}: {exc}); "
            "without internet, pass --weights FILE (a state dict saved from this architecture)"
        ) from exc
    head = _classifier_path(model)
    if weights is not None:
        load_into(model, load_state_file(weights), origin=f"--weights {weights}", head=head)
    model = _strip_classifier(model, head).eval()
    return Backbone(
        name=f"torchvision/{name}",
        module=model,
        image_size=image_size or 224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights_id=state_dict_id(model.state_dict()),
    )
