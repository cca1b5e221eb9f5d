"""torchvision detectors (FCOS, RetinaNet, Faster/Mask R-CNN) on a timm backbone with a feature pyramid.

The backbone is any timm model with ``features_only`` support; the offline default
``tf_efficientnet_lite0`` starts from ImageNet weights (DESIGN.md). ``--weights FILE`` may instead hold a
full detector state dict (e.g. one trained earlier, or COCO-pretrained torchvision weights whose shapes fit),
loaded with the class-specific head layers skipped when the class count differs.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from pixlabel.detect.spec import DetectorSpec
from pixlabel.errors import InputError

if TYPE_CHECKING:
    from timm.models import FeatureInfo

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class TimmFPN(nn.Module):
    """timm feature maps at strides 8, 16, 32 -> FPN levels with ``out_channels`` channels each."""

    def __init__(self, name: str, out_channels: int, extra: nn.Module, *, pretrained: bool) -> None:
        super().__init__()
        import timm

        self.body = timm.create_model(name, features_only=True, out_indices=(2, 3, 4), pretrained=False)
        if pretrained:
            _load_backbone_weights(self.body, name)
        info = cast("FeatureInfo", self.body.feature_info)  # timm sets it on features_only models
        self.fpn = FeaturePyramidNetwork(info.channels(), out_channels, extra_blocks=extra)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))


def _load_backbone_weights(body: nn.Module, name: str) -> None:
    """ImageNet weights: the offline package for lite0, timm's hub download (needs internet) otherwise."""
    import timm

    from pixlabel.backbones.timm_models import OFFLINE_DEFAULT, lite0_package_state

    if name == OFFLINE_DEFAULT:
        state = lite0_package_state()
    else:
        state = timm.create_model(name, pretrained=True).state_dict()
    own = body.state_dict()
    body.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)


def _anchor_sizes(image_size: int, levels: int) -> tuple[int, ...]:
    """Anchor side per pyramid level, scaled so 128-px inputs get 8..128 px (stride-matched)."""
    base = max(4, image_size // 16)
    return tuple(base * 2 ** i for i in range(levels))


def build_detector(spec: DetectorSpec, *, pretrained_backbone: bool = True) -> nn.Module:
    k = len(spec.classes)
    common: dict[str, Any] = {"min_size": spec.image_size, "max_size": spec.image_size * 2,
                              "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}
    c = spec.fpn_channels
    if spec.arch in ("fcos", "retinanet"):
        body = TimmFPN(spec.backbone, c, LastLevelP6P7(c, c), pretrained=pretrained_backbone)
        sizes = _anchor_sizes(spec.image_size, 5)
        if spec.arch == "fcos":
            anchors = AnchorGenerator(tuple((s,) for s in sizes), ((1.0,),) * 5)
            # score_thresh 0.05 (torchvision's FCOS default is 0.2): second-choice classes at one place
            # stay in the output at low scores, which is what mAP and a reviewer's alternatives need
            return FCOS(body, k, anchor_generator=anchors, detections_per_img=50, score_thresh=0.05, **common)
        anchors = AnchorGenerator(tuple((s, int(s * 1.26), int(s * 1.59)) for s in sizes), ((0.5, 1.0, 2.0),) * 5)
        return RetinaNet(body, k, anchor_generator=anchors, detections_per_img=50, **common)
    body = TimmFPN(spec.backbone, c, LastLevelMaxPool(), pretrained=pretrained_backbone)
    anchors = AnchorGenerator(tuple((s,) for s in _anchor_sizes(spec.image_size, 4)), ((0.5, 1.0, 2.0),) * 4)
    rcnn = MaskRCNN if spec.arch == "maskrcnn" else FasterRCNN
    # +1: the R-CNN family counts torchvision's background class; fewer proposals keep CPU inference fast.
    return rcnn(body, k + 1, rpn_anchor_generator=anchors, box_batch_size_per_image=128,
                rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100, box_detections_per_img=50, **common)


def load_detector_weights(model: nn.Module, path: Path | str) -> tuple[int, int]:
    """Load a detector state dict from ``path``, skipping tensors whose shapes differ (class heads).

    Returns ``(loaded, skipped)`` tensor counts; refuses a file that fits nothing.
    """
    from pixlabel.backbones.timm_models import load_state_file

    state = load_state_file(Path(path))
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fit:
        raise InputError(f"{path}: no tensor in this file fits the detector (wrong architecture?)")
    model.load_state_dict(fit, strict=False)
    return len(fit), len(own) - len(fit)
