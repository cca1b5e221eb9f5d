"""Model directory contract: ``model.yaml`` + ``weights.pt``, and the predictor interface.

``model.yaml`` says how to rebuild the network (``arch`` from :mod:`pixlabel.models.arch`) and how
to preprocess an image for it (RGB or grayscale, resize to ``image_size`` (h, w), normalise), and whether
predictions average test-time views (``tta: flip``: the image and its horizontal mirror). Export (ONNX)
copies the same fields into the ONNX metadata so any runtime preprocesses and averages identically.

Example::

    spec = ModelSpec(arch="smallcnn", classes=("cat", "dog"), image_size=(32, 32))
    save_model("runs/model", net, spec)
    predictor = load_predictor("runs/model")     # or "model.onnx"
    probs = predictor.predict_proba([pil_image])   # (N, K)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.models.checkpoint import load_weights_only

SPEC_FILE = "model.yaml"
WEIGHTS_FILE = "weights.pt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TTA_MODES = ("none", "flip")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a classifier and feed it an image."""

    arch: str                         # a name in pixlabel.models.arch.ARCHS, e.g. "smallcnn", "timm:resnet18"
    classes: tuple[str, ...]          # output index -> class name, K entries
    image_size: tuple[int, int]       # (h, w) the network sees
    in_chans: int = 3                 # 1: images are converted to grayscale first
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    arch_options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for the arch factory
    tta: str = "none"                 # flip: average the softmax of the image and of its horizontal mirror

    def __post_init__(self) -> None:
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta: expected one of {', '.join(TTA_MODES)}, got {self.tta!r}")
        if len(self.classes) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {list(self.classes)}")
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"mean/std need {self.in_chans} values, got {self.mean} / {self.std}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "model spec") -> ModelSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
        try:
            return cls(
                arch=str(d["arch"]), classes=tuple(str(c) for c in d["classes"]),
                image_size=(int(d["image_size"][0]), int(d["image_size"][1])),
                in_chans=int(d.get("in_chans", 3)),
                mean=tuple(float(x) for x in d.get("mean", IMAGENET_MEAN)),
                std=tuple(float(x) for x in d.get("std", IMAGENET_STD)),
                arch_options=dict(d.get("arch_options") or {}),
                tta=str(d.get("tta", "none")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"{where}: invalid model spec ({exc})") from exc

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> normalised float32 batch ``(N, C, h, w)`` exactly as the network was trained."""
        h, w = self.image_size
        mode = "L" if self.in_chans == 1 else "RGB"
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        out = np.empty((len(images), self.in_chans, h, w), np.float32)
        for i, im in enumerate(images):
            arr = np.asarray(im.convert(mode).resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            out[i] = (arr - mean) / std
        return out


def average_views(probs_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, tta: str) -> np.ndarray:
    """``probs_of(x)`` for a preprocessed batch ``(N, C, h, w)``, averaged with ``probs_of`` of the mirrored
    batch when ``tta == "flip"``: one place for the rule, so PyTorch and ONNX Runtime predict identically.

    >>> first_pixel = lambda b: b[:, 0, 0, :1]  # a stand-in "model": (N, 1)
    >>> average_views(first_pixel, np.arange(4.0).reshape(1, 1, 1, 4), tta="flip")  # (0 + 3) / 2
    array([[1.5]])
    """
    probs = probs_of(x)
    if tta == "flip":
        probs = (probs + probs_of(np.ascontiguousarray(x[..., ::-1]))) / 2
    return probs


class Predictor(Protocol):
    """A trained classifier ready to predict, whatever its runtime (PyTorch or ONNX Runtime)."""

    spec: ModelSpec

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:  # (N, K) softmax probabilities
        ...


def save_model(directory: Path | str, module: Any, spec: ModelSpec) -> Path:
    """Write ``model.yaml`` and ``weights.pt`` atomically into ``directory`` (created if missing)."""
    return save_weights_and_spec(directory, module, spec.to_dict(), spec_file=SPEC_FILE)


def save_weights_and_spec(directory: Path | str, module: Any, spec: dict[str, Any], *, spec_file: str) -> Path:
    """``weights.pt`` (the state dict) then the YAML spec, each written atomically: a reader never sees a spec
    without its weights. Shared by classifier and detector directories."""
    import torch

    from pixlabel.io.csvout import write_atomically

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (WEIGHTS_FILE + ".tmp")
    torch.save(module.state_dict(), tmp)
    tmp.replace(d / WEIGHTS_FILE)
    write_atomically(d / spec_file, yaml.safe_dump(spec, sort_keys=False))
    return d


def read_spec(directory: Path | str) -> ModelSpec:
    path = Path(directory) / SPEC_FILE
    if not path.is_file():
        raise InputError(f"{directory}: not a model directory (no {SPEC_FILE})")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of model fields")
    return ModelSpec.from_dict(data, where=str(path))


def load_model(directory: Path | str) -> tuple[Any, ModelSpec]:
    """Rebuild the network from a model directory; returns ``(module in eval mode, spec)``."""
    from pixlabel.models.arch import build_model

    spec = read_spec(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{directory}: no {WEIGHTS_FILE} beside {SPEC_FILE}")
    module = build_model(spec, pretrained=False)
    state = load_weights_only(weights, what="model weights file")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{weights}: weights do not fit arch {spec.arch!r}: {str(exc)[:300]}") from exc
    return module.eval(), spec


class TorchPredictor:
    """A model directory loaded into PyTorch."""

    def __init__(self, directory: Path | str, *, batch_size: int = 256) -> None:
        self.module, self.spec = load_model(directory)
        self.batch_size = batch_size

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        def probs_of(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return torch.softmax(self.module(torch.from_numpy(x)).float(), dim=1).numpy()

        out = [average_views(probs_of, self.spec.preprocess(images[i:i + self.batch_size]), tta=self.spec.tta)
               for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.spec.classes)), np.float32)


def load_predictor(path: Path | str) -> Predictor:
    """A model directory (PyTorch) or an ``.onnx`` file (ONNX Runtime) behind one interface."""
    p = Path(path)
    if p.is_dir():
        return TorchPredictor(p)
    if p.suffix.lower() == ".onnx" and p.is_file():
        from pixlabel.export.onnx_runtime import OnnxPredictor  # built with the export issue

        return OnnxPredictor(p)
    raise InputError(f"{p}: expected a model directory (with {SPEC_FILE}) or an .onnx file")
