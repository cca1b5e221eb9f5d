"""``pixlabel train IMAGES --labels labels.csv --out MODEL_DIR``: train a classifier on labeled images.

Example::

    pixlabel train data/images --labels ws/labels.csv --out runs/m --epochs 10 --min-confidence 0.9
    pixlabel train data/pets --out runs/pets --backbone timm:tf_efficientnet_lite0 --freeze-backbone
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int
from pixlabel.config import load_config
from pixlabel.train.config import (
    ADVERSARIAL,
    AUGMENTS,
    FORMATS,
    IMBALANCE,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    TTA_MODES,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train a classifier on labeled images",
        description="Train an image classifier. Labels come from the labels.csv that `pixlabel label` writes "
                    "(path,label,confidence,source,status), any labels.csv/COCO file, or IMAGES as an ImageFolder "
                    "(one sub-folder per class). Writes MODEL_DIR/model.yaml + weights.pt (best validation "
                    "epoch), last.pt (re-run the same command to resume), config.yaml, classes.txt, "
                    "curves.csv, split.csv, errors.csv and report.html.")
    p.add_argument("images", help="image root (paths in --labels are relative to it)")
    p.add_argument("--labels", help="labels.csv or COCO .json (default: IMAGES is an ImageFolder)")
    p.add_argument("--format", choices=FORMATS, help="how to read the labels (default auto: by file extension)")
    p.add_argument("--out", required=True, help="MODEL_DIR")
    p.add_argument("--config", type=Path, help="YAML file with any option below (flags win)")
    p.add_argument("--backbone", dest="arch", help="smallcnn or timm:NAME (default: smallcnn for images up to "
                                                   "64 px, else timm:tf_efficientnet_lite0, pretrained offline)")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false", default=None,
                   help="timm archs start from random weights")
    p.add_argument("--image-size", type=positive_int, help="input side in px (default: the images' own, or 224)")
    p.add_argument("--width", type=positive_int, help="smallcnn channel width (default 32)")
    p.add_argument("--depth", type=positive_int, help="smallcnn residual blocks per stage (default 1)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="(max) learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--augment", choices=AUGMENTS, help="basic: flip/shift; light (default): flip/shift/zoom/rotate; "
                                                       "strong: + TrivialAugment and random erasing")
    p.add_argument("--erase", type=float, metavar="P", help="random erasing on whole batches after --augment: each "
                   "image loses a black rectangle (2-40%% of its area) with probability P, e.g. 0.5 (0 = off)")
    p.add_argument("--mixup", type=float, help="MixUp Beta alpha (0 = off)")
    p.add_argument("--cutmix", type=float, help="CutMix Beta alpha (0 = off)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--ema", type=float, help="validate and save an exponential moving average of the weights "
                   "with this per-step decay, e.g. 0.99 (0 = off, the default)")
    p.add_argument("--tta", choices=TTA_MODES, help="test-time augmentation saved in model.yaml: flip averages "
                   "each image with its mirror in eval, serve and load_predictor (2x predict cost; default none)")
    p.add_argument("--imbalance", choices=IMBALANCE, help="class weights, focal loss or oversampling")
    p.add_argument("--adversarial", choices=ADVERSARIAL, help="adversarial training (attacks in [0,1] pixels)")
    p.add_argument("--eps", type=float, help="attack L-inf radius in [0,1] pixel space (default 8/255)")
    p.add_argument("--attack-steps", type=positive_int, help="PGD steps in adversarial training (5)")
    p.add_argument("--freeze-backbone", action="store_true", default=None, help="train only the classifier head")
    filt = p.add_mutually_exclusive_group()
    filt.add_argument("--min-confidence", type=float, help="keep labels with at least this confidence")
    filt.add_argument("--only-human", action="store_true", default=None, help="keep only human labels")
    p.add_argument("--accepted-only", action="store_true", default=None, help="drop labels with status review")
    p.add_argument("--confidence-weighted", action="store_true", default=None,
                   help="weight each example's loss by its label confidence")
    p.add_argument("--synthetic", help="DIR with labels.csv (+ images/) of generated images, added to training")
    p.add_argument("--val-fraction", type=float, help="held-out validation share (0.1)")
    p.add_argument("--patience", type=positive_int, help="early-stopping patience in epochs (5)")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=PRECISIONS, help="bf16 autocast where the CPU supports it (auto)")
    p.add_argument("--workers", type=int, help="worker processes for per-image augmentation (light, strong; default 0)")
    p.add_argument("--restart", action="store_true", default=None, help="ignore MODEL_DIR/last.pt, start over")
    p.set_defaults(func=run)


KEYS = ("images", "labels", "format", "out", "arch", "pretrained", "image_size", "width", "depth", "epochs",
        "batch_size", "optimizer", "lr", "weight_decay", "schedule", "augment", "erase", "mixup", "cutmix", "dropout",
        "label_smoothing", "ema", "tta", "imbalance", "adversarial", "eps", "attack_steps", "freeze_backbone",
        "min_confidence", "only_human", "accepted_only", "confidence_weighted", "synthetic", "val_fraction",
        "patience", "seed", "precision", "workers", "restart")


def run(args: argparse.Namespace) -> int:
    from pixlabel.train import TrainConfig, train_model

    config = load_config(TrainConfig, args.config, {k: getattr(args, k) for k in KEYS})
    result = train_model(config)
    best = "n/a (no validation split)" if result.best_val_acc is None else f"{result.best_val_acc:.4f}"
    print(f"trained {result.spec.arch} on {len(result.spec.classes)} classes: {result.epochs_run} epochs"
          f"{' (early stop)' if result.stopped_early else ''}, best epoch {result.best_epoch}, "
          f"val accuracy {best}, {result.seconds:.0f} s")
    print(f"model: {result.out}  (report: {result.out / 'report.html'})")
    return 0
