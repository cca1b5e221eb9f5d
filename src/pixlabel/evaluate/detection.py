"""``pixlabel eval`` for boxes and masks: mAP of a detector or of a predictions file against truth COCO.

MODEL is either a COCO predictions file — typically a workspace's ``labels.coco.json``, where annotations
with a ``score`` are model-made and those without are human seeds; images carrying any human annotation are
left out, so the score measures only what the model labelled — or a detector directory (``detector.yaml``),
run on every truth image. DIR receives ``metrics.json`` and ``report.html`` (and, for a detector,
``predictions.coco.json``). Example::

    metrics = evaluate_detection(DetectionEvalConfig(model="ws/labels.coco.json", images="scenes",
                                                     labels="scenes/truth.coco.json", out="ws/eval"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixlabel.detect.eval_report import write_detection_report
from pixlabel.detect.metrics import IOU_TYPES, detection_metrics
from pixlabel.detect.spec import is_detector_dir
from pixlabel.errors import InputError
from pixlabel.io.formats._common import all_images
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.records import Dataset


@dataclass(frozen=True)
class DetectionEvalConfig:
    model: str   # predictions .json, or a detector directory holding detector.yaml
    images: str  # image root; truth and prediction paths are relative to it
    labels: str  # truth COCO .json with boxes (and masks for iou_type segm)
    out: str
    iou_type: str = "bbox"  # bbox | segm

    def __post_init__(self) -> None:
        if self.iou_type not in IOU_TYPES:
            raise InputError(f"--iou-type: expected one of {', '.join(IOU_TYPES)}, got {self.iou_type!r}")


def is_detection_model(model: str | Path) -> bool:
    """True for a predictions ``.json`` file or a directory holding ``detector.yaml``."""
    path = Path(model)
    return (path.is_file() and path.suffix.lower() == ".json") or is_detector_dir(path)


def evaluate_detection(config: DetectionEvalConfig) -> dict[str, Any]:
    truth = _read_truth(config.labels)
    model = Path(config.model)
    extra: dict[str, Any] = {}
    if model.is_dir():
        from pixlabel.detect.predict import predict_dataset  # torch and the detector only when needed

        paths = [i.path for i in all_images(truth)]
        predicted = predict_dataset(model, Path(config.images), paths)
        write_coco(predicted, Path(config.out) / "predictions.coco.json")
    else:
        predicted, paths, extra = _predictions_file(model, truth)
    metrics = detection_metrics(truth, predicted, images=paths, iou_type=config.iou_type)
    metrics.update(extra, model=str(config.model), labels=str(config.labels))
    write_detection_report(config.out, metrics, title=f"Detection evaluation: {config.model}")
    return metrics


def _read_truth(labels: str) -> Dataset:
    path = Path(labels)
    if path.suffix.lower() != ".json":
        raise InputError(f"{labels}: detection eval reads truth boxes from a COCO .json file; convert other "
                         "formats with pixlabel convert --to coco")
    truth = read_coco(path)
    if not any(lab.box is not None or lab.mask is not None for lab in truth.labels):
        raise InputError(f"{labels}: no annotation has a bbox or segmentation; nothing to score a detector on")
    return truth


def _predictions_file(path: Path, truth: Dataset) -> tuple[Dataset, list[str], dict[str, Any]]:
    """Model-made labels of a COCO file and the truth images to score: those it covers with no human label."""
    data = read_coco(path)
    human = {lab.image for lab in data.labels if lab.source == "human"}
    covered = {i.path for i in all_images(data)}
    truth_paths = [i.path for i in all_images(truth)]
    paths = [p for p in truth_paths if p in covered and p not in human]
    if not paths:
        raise InputError(f"{path}: none of the {len(truth_paths)} truth images is in it without a human label "
                         f"(file paths such as {next(iter(covered), '(none)')!r} must match truth paths such as "
                         f"{truth_paths[0]!r}; images labelled by hand are not scored)")
    model_labels = [lab for lab in data.labels if lab.source == "model"]
    extra = {"n_seed_images": sum(p in human for p in truth_paths),
             "n_unscored_images": sum(p not in covered for p in truth_paths)}
    return Dataset(data.images, model_labels, data.ontology), paths, extra
