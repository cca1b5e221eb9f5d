"""``create_backbone(name)``: one entry point for every backbone family.

Names: a timm model (``tf_efficientnet_lite0``, ``resnet18``, or ``timm/NAME``), a torchvision model
(``torchvision/resnet18``). The default works offline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pixlabel.errors import PixlabelError

if TYPE_CHECKING:  # torch loads only when a backbone is built
    from pixlabel.backbones.base import Backbone

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
MIN_IMAGE_SIZE = 16  # below this a 32x-downsampling CNN has nothing left to pool

Factory = Callable[..., "Backbone"]


def _timm(name: str, **kw: object) -> Backbone:
    from pixlabel.backbones.timm_models import create_timm_backbone

    return create_timm_backbone(name, **kw)  # type: ignore[arg-type]


def _torchvision(name: str, **kw: object) -> Backbone:
    from pixlabel.backbones.torchvision_models import create_torchvision_backbone

    return create_torchvision_backbone(name, **kw)  # type: ignore[arg-type]


# prefix -> factory; a bare name goes to timm, the largest family.
FAMILIES: dict[str, Factory] = {"timm": _timm, "torchvision": _torchvision}


def create_backbone(
    name: str = DEFAULT_BACKBONE, *, weights: Path | None = None, image_size: int | None = None,
    pretrained: bool = True,
) -> Backbone:
    """Build a backbone by name.

    >>> create_backbone("tf_efficientnet_lite0", image_size=64).image_size  # doctest: +SKIP
    64
    """
    if not isinstance(name, str) or not name.strip():
        raise PixlabelError(f"backbone name must be a non-empty string, got {name!r}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < MIN_IMAGE_SIZE):
        raise PixlabelError(
            f"image size must be a whole number of pixels >= {MIN_IMAGE_SIZE}, got {image_size!r}"
        )
    if weights is not None:
        weights = Path(weights)
    family, _, model = name.partition("/")
    if not model:
        family, model = "timm", name
    if family not in FAMILIES:
        raise PixlabelError(
            f"unknown backbone family {family!r} in {name!r}; known prefixes: "
            f"{', '.join(f + '/' for f in FAMILIES)} (a bare name is a timm model)"
        )
    return FAMILIES[family](model, weights=weights, image_size=image_size, pretrained=pretrained)
