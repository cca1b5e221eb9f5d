"""``pixlabel eval MODEL IMAGES --labels truth.csv --out DIR``: accuracy, F1, calibration, robustness; for a
detector or a predictions .json against truth COCO boxes, mAP (:mod:`pixlabel.evaluate.detection`).

Example::

    pixlabel eval runs/m data/test --labels data/test/labels.csv --out runs/m-eval
    pixlabel eval runs/m data/test --labels truth.csv --out runs/m-pgd --attack pgd --eps 0.1
    pixlabel eval ws/labels.coco.json scenes --labels scenes/truth.coco.json --out ws/eval --iou-type segm
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a trained model on labeled images",
        description="Score MODEL (a model directory or an exported .onnx file) on labeled images. Writes "
                    "DIR/metrics.json (accuracy, macro_f1, per_class, confusion_matrix, ece; robust_accuracy "
                    "with --attack), predictions.csv, errors.csv and report.html. For a detector directory "
                    "(detector.yaml) or a COCO predictions .json (annotations with a score; images with a human "
                    "annotation are not scored) against truth COCO --labels: mAP@0.5, mAP@[.5:.95], per-class AP "
                    "and PR curves in metrics.json and report.html.")
    p.add_argument("model", help="model directory (model.yaml + weights.pt), .onnx file, detector directory "
                                 "(detector.yaml) or COCO predictions .json")
    p.add_argument("images", help="image root (or an ImageFolder when --labels is not given)")
    p.add_argument("--labels", help="truth labels.csv or COCO .json, paths relative to IMAGES")
    p.add_argument("--format", choices=("auto", "csv", "imagefolder", "coco", "yolo", "voc"), default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--attack", choices=("fgsm", "pgd"), help="also measure accuracy under this attack")
    p.add_argument("--eps", type=float, default=8 / 255, help="attack L-inf radius in [0,1] pixel space (8/255)")
    p.add_argument("--attack-steps", type=positive_int, default=10, help="PGD steps (10)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox",
                   help="detection: score boxes (bbox, default) or instance masks (segm)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixlabel.evaluate import EvalConfig, evaluate_model
    from pixlabel.evaluate.detection import is_detection_model

    if is_detection_model(args.model):
        return _run_detection(args)

    m = evaluate_model(EvalConfig(model=args.model, images=args.images, labels=args.labels, format=args.format,
                                  out=args.out, attack=args.attack, eps=args.eps, attack_steps=args.attack_steps,
                                  batch_size=args.batch_size))
    line = f"{m['n']} images: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, ECE {m['ece']:.4f}"
    if "robust_accuracy" in m:
        line += f", {args.attack} robust accuracy {m['robust_accuracy']:.4f} (eps {args.eps:.4g})"
    print(line)
    print(f"wrote {args.out}/metrics.json, predictions.csv, report.html")
    return 0


def _run_detection(args: argparse.Namespace) -> int:
    from pixlabel.errors import InputError
    from pixlabel.evaluate.detection import DetectionEvalConfig, evaluate_detection

    if not args.labels:
        raise InputError(f"{args.model}: detection eval needs --labels, a truth COCO .json with boxes")
    if args.attack:
        raise InputError(f"--attack {args.attack}: adversarial accuracy is for classifiers, not detectors")
    m = evaluate_detection(DetectionEvalConfig(model=args.model, images=args.images, labels=args.labels,
                                               out=args.out, iou_type=args.iou_type))

    def show(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    print(f"{m['n_images']} images, {m['n_truth']} truth objects, {m['n_pred']} predictions ({args.iou_type}): "
          f"mAP@0.5 {show(m['map50'])}, mAP@[.5:.95] {show(m['map'])}")
    extra = ", predictions.coco.json" if Path(args.model).is_dir() else ""
    print(f"wrote {args.out}/metrics.json, report.html{extra}")
    return 0
