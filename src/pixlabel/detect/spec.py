"""A detection model directory: ``detector.yaml`` (a :class:`DetectorSpec`) + ``weights.pt``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixlabel.errors import InputError
from pixlabel.models.checkpoint import load_weights_only

DETECTOR_FILE = "detector.yaml"
WEIGHTS_FILE = "weights.pt"
ARCHS = ("fcos", "retinanet", "fasterrcnn", "maskrcnn")


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector: arch, class names (index 0 is torchvision's background for
    the R-CNN family; names here never include it), the backbone, the size the detector resizes to, and the
    score calibration learned on held-out seed images (isotonic knots, score -> P(correct))."""

    arch: str = "fcos"
    classes: tuple[str, ...] = ()
    backbone: str = "tf_efficientnet_lite0"
    image_size: int = 128  # shorter side the detector's own transform resizes every image to
    fpn_channels: int = 96
    calibration: tuple[tuple[float, float], ...] = ()  # (score, probability) knots; empty: identity

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise InputError(f"unknown detector {self.arch!r}; known: {', '.join(ARCHS)}")
        if len(self.classes) < 1:
            raise InputError("a detector needs at least one class")

    @property
    def with_masks(self) -> bool:
        return self.arch == "maskrcnn"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        d["calibration"] = [list(k) for k in self.calibration]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str) -> DetectorSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise InputError(f"{where}: expected a mapping with keys from {sorted(known)}")
        try:
            return cls(**{**d, "classes": tuple(str(c) for c in d.get("classes", ())),
                          "calibration": tuple((float(a), float(b)) for a, b in d.get("calibration", ()))})
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: invalid detector spec ({exc})") from exc


def save_detector(directory: Path | str, module: Any, spec: DetectorSpec) -> Path:
    from pixlabel.models.spec import save_weights_and_spec

    return save_weights_and_spec(directory, module, spec.to_dict(), spec_file=DETECTOR_FILE)


def is_detector_dir(path: Path | str) -> bool:
    return (Path(path) / DETECTOR_FILE).is_file()


def load_detector(directory: Path | str) -> tuple[Any, DetectorSpec]:
    """Rebuild a saved detector in eval mode; a clear error when the weights do not fit the spec."""
    from pixlabel.detect.model import build_detector

    path = Path(directory) / DETECTOR_FILE
    if not path.is_file():
        raise InputError(f"{directory}: not a detector directory (no {DETECTOR_FILE})")
    spec = DetectorSpec.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), where=str(path))
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{directory}: no {WEIGHTS_FILE} beside {DETECTOR_FILE}")
    module = build_detector(spec, pretrained_backbone=False)
    state = load_weights_only(weights, what="detector weights file")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{weights}: weights do not fit detector {spec.arch!r}: {str(exc)[:300]}") from exc
    return module.eval(), spec
