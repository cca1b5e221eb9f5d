"""``pixlabel eval MODEL IMAGES --labels truth.csv --out DIR``: accuracy, F1, calibration, robustness.

Example::

    pixlabel eval runs/m data/test --labels data/test/labels.csv --out runs/m-eval
    pixlabel eval runs/m data/test --labels truth.csv --out runs/m-pgd --attack pgd --eps 0.1
"""

from __future__ import annotations

import argparse
from typing import Any

from pixlabel.cli.argtypes import positive_int


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a trained model on labeled images",
        description="Score MODEL (a model directory or an exported .onnx file) on labeled images. Writes "
                    "DIR/metrics.json (accuracy, macro_f1, per_class, confusion_matrix, ece; robust_accuracy "
                    "with --attack), predictions.csv, errors.csv and report.html.")
    p.add_argument("model", help="model directory (model.yaml + weights.pt) or .onnx file")
    p.add_argument("images", help="image root (or an ImageFolder when --labels is not given)")
    p.add_argument("--labels", help="truth labels.csv or COCO .json, paths relative to IMAGES")
    p.add_argument("--format", choices=("auto", "csv", "imagefolder", "coco", "yolo", "voc"), default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--attack", choices=("fgsm", "pgd"), help="also measure accuracy under this attack")
    p.add_argument("--eps", type=float, default=8 / 255, help="attack L-inf radius in [0,1] pixel space (8/255)")
    p.add_argument("--attack-steps", type=positive_int, default=10, help="PGD steps (10)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixlabel.evaluate import EvalConfig, evaluate_model

    m = evaluate_model(EvalConfig(model=args.model, images=args.images, labels=args.labels, format=args.format,
                                  out=args.out, attack=args.attack, eps=args.eps, attack_steps=args.attack_steps,
                                  batch_size=args.batch_size))
    line = f"{m['n']} images: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, ECE {m['ece']:.4f}"
    if "robust_accuracy" in m:
        line += f", {args.attack} robust accuracy {m['robust_accuracy']:.4f} (eps {args.eps:.4g})"
    print(line)
    print(f"wrote {args.out}/metrics.json, predictions.csv, report.html")
    return 0
