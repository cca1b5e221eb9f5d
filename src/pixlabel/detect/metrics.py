"""Detection and instance-mask mAP with pycocotools' ``COCOeval``, matching images by path and classes by name.

Truth and predictions are :class:`~pixlabel.records.Dataset` objects, turned into in-memory COCO objects through
:func:`~pixlabel.io.formats.coco.format_coco`; a prediction's score is its label's ``confidence``. The numbers
are COCO's: 101-point interpolated precision, at most 100 detections per image, all object sizes; a class with
no truth box has no AP (``None``) and stays out of the mean, as in ``COCOeval.summarize``.

>>> from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance
>>> box = Box(10, 10, 40, 40, image_size=(64, 64))
>>> truth = Dataset([ImageInfo("a.png", (64, 64))], [Label("a.png", "cat", box=box)], Ontology(("cat",)))
>>> guess = Label("a.png", "cat", 0.9, Provenance(source="model"), box=box)
>>> detection_metrics(truth, Dataset([], [guess], Ontology(("cat",))))["map50"]
1.0
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pixlabel.errors import InputError
from pixlabel.io.formats._common import all_images
from pixlabel.io.formats.coco import format_coco
from pixlabel.records import Dataset, ImageInfo, Label, Ontology

IOU_TYPES = ("bbox", "segm")
_DECIMALS = 4  # PR curves are drawn, not recomputed: 4 decimals keep metrics.json small
_AP_DECIMALS = 6  # COCOeval divides by tp + fp + eps, so a perfect AP comes out as 0.9999999999999998


def detection_metrics(truth: Dataset, predicted: Dataset, *, images: list[str] | None = None,
                      iou_type: str = "bbox") -> dict[str, Any]:
    """``map50``, ``map`` (IoU .5:.95), ``map75``, ``per_class``, ``pr_curves`` (IoU .5) and ``n_images``.

    Only the ``images`` paths are scored when given (e.g. those nobody labelled by hand), else every truth
    image. Predictions on other images are ignored. ``iou_type="segm"`` scores masks instead of boxes.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    paths = _scored_paths(truth, predicted, images)
    ontology = Ontology(tuple(dict.fromkeys([*truth.ontology.classes, *predicted.ontology.classes,
                                             *(lab.label for lab in [*truth.labels, *predicted.labels])])))
    sizes = _image_sizes(truth, predicted)
    truth_labels = _geometric(truth.labels, paths, iou_type=iou_type, role="truth")
    pred_labels = _geometric(predicted.labels, paths, iou_type=iou_type, role="prediction")
    image_list = [ImageInfo(p, sizes.get(p, (1, 1))) for p in paths]  # (1, 1): no label will be rasterised on it
    gt = format_coco(Dataset(image_list, truth_labels, ontology))
    dt = format_coco(Dataset(image_list, pred_labels, ontology))  # same images in order: same image ids
    for ann, lab in zip(dt["annotations"], pred_labels, strict=True):
        ann["score"] = lab.confidence

    evaluator = COCOeval(_coco(gt), _coco(dt), iouType=iou_type)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K): all areas, 100 detections per image
    recall = evaluator.eval["recall"][:, :, 0, -1]  # (T, K)
    thresholds = evaluator.params.iouThrs
    at50, at75 = (int(np.argmin(np.abs(thresholds - t))) for t in (0.5, 0.75))
    n_truth = Counter(lab.label for lab in truth_labels)
    n_pred = Counter(lab.label for lab in pred_labels)

    per_class: dict[str, dict[str, Any]] = {}
    pr_curves: dict[str, dict[str, list[float]]] = {}
    for k, name in enumerate(ontology.classes):  # category ids are 1..K in ontology order, as COCOeval sorts them
        row: dict[str, Any] = {"ap50": None, "ap": None, "ap75": None, "recall50": None,
                               "n_truth": n_truth[name], "n_pred": n_pred[name]}
        if n_truth[name]:
            row.update(ap50=_round(precision[at50, :, k].mean()), ap=_round(precision[:, :, k].mean()),
                       ap75=_round(precision[at75, :, k].mean()), recall50=_round(recall[at50, k]))
            pr_curves[name] = {"recall": [round(float(r), _DECIMALS) for r in evaluator.params.recThrs],
                               "precision": [round(float(p), _DECIMALS) for p in precision[at50, :, k]]}
        per_class[name] = row
    return {
        "iou_type": iou_type,
        "map50": _mean(per_class, "ap50"),
        "map": _mean(per_class, "ap"),
        "map75": _mean(per_class, "ap75"),
        "n_images": len(paths),
        "n_truth": len(truth_labels),
        "n_pred": len(pred_labels),
        "max_detections": int(evaluator.params.maxDets[-1]),
        "classes": list(ontology.classes),
        "per_class": per_class,
        "pr_curves": pr_curves,
    }


def _scored_paths(truth: Dataset, predicted: Dataset, images: list[str] | None) -> list[str]:
    known = [i.path for i in all_images(truth)]
    if images is None:
        paths = known
    else:
        missing = sorted(set(images) - set(known))
        if missing:
            raise InputError(f"{len(missing)} image(s) to score have no truth entry, e.g. {missing[0]!r}")
        paths = list(dict.fromkeys(images))
    if not paths:
        raise InputError("no images to score: the truth has no images" if images is None
                         else "no images to score: the list of images is empty")
    guessed = {lab.image for lab in predicted.labels}
    if guessed and not guessed & set(known):
        raise InputError(f"no prediction is on a truth image: prediction paths such as {min(guessed)!r} must "
                         f"match truth paths such as {known[0]!r} (both relative to the image root)")
    return paths


def _image_sizes(truth: Dataset, predicted: Dataset) -> dict[str, tuple[int, int]]:
    """``(h, w)`` per path from either side; COCOeval needs it to rasterise polygon masks."""
    sizes: dict[str, tuple[int, int]] = {}
    for ds in (predicted, truth):  # truth last, so it wins
        for info in all_images(ds):
            if info.image_size is not None:
                sizes[info.path] = info.image_size
    return sizes


def _geometric(labels: list[Label], paths: list[str], *, iou_type: str, role: str) -> list[Label]:
    """Labels on the scored images that carry what ``iou_type`` compares; class-only labels are skipped."""
    keep = set(paths)
    out = [lab for lab in labels if lab.image in keep and (lab.box is not None or lab.mask is not None)]
    if iou_type == "segm":
        boxed = next((lab for lab in out if lab.mask is None), None)
        if boxed is not None:
            raise InputError(f"{boxed.image}: a {role} {boxed.label!r} has a box but no mask; mask AP "
                             "(iou_type segm) needs masks on every truth and predicted object")
    return out


def _coco(data: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _mean(per_class: dict[str, dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in per_class.values() if row[key] is not None]
    return _round(np.mean(values)) if values else None


def _round(value: Any) -> float:
    return round(float(value), _AP_DECIMALS)
