"""The model half of ``pixlabel export``: ``pixlabel export MODEL_DIR --format onnx --out model.onnx``.

``cli/export.py`` owns the command; it adds these flags and hands over when the target is a model directory
(``--format onnx``, or a directory with ``model.yaml``).

Example::

    pixlabel export runs/fmnist --format onnx --out fmnist.onnx
    pixlabel export runs/fmnist --format onnx --int8 --calib fmnist/train --out fmnist.int8.onnx
    pixlabel export runs/fmnist --format onnx --int8 --out fmnist.int8.onnx   # calibrates on its training images
    pixlabel export runs/fmnist --format onnx --prune 0.5 --labeled fmnist/val --finetune-epochs 1 --out p.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError


def add_model_args(p: Any) -> None:
    g = p.add_argument_group("model export (MODEL_DIR --format onnx)")
    g.add_argument("--out", type=Path, metavar="PATH", help="ONNX file to write (or the --to file or folder)")
    g.add_argument("--int8", action="store_true",
                   help="static INT8 quantization (QLinear ops), calibrated on --calib or else the model's own "
                        "training images (MODEL_DIR/config.yaml + split.csv)")
    g.add_argument("--calib", type=Path, metavar="IMAGES",
                   help="images to calibrate INT8 and verify outputs on (e.g. the training images)")
    g.add_argument("--calib-count", type=int, default=256, metavar="N", help="calibration images (default 256)")
    g.add_argument("--prune", type=float, metavar="AMOUNT", help="zero this fraction of conv/linear weights")
    g.add_argument("--structured", action="store_true", help="prune whole output channels (L2 norm)")
    g.add_argument("--labeled", type=Path, metavar="DIR",
                   help="ImageFolder CLASS/image files: report accuracy, fine-tune after pruning")
    g.add_argument("--finetune-epochs", type=int, default=0, metavar="N",
                   help="fine-tune a pruned model N epochs on --labeled (default 0)")
    g.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="torch ONNX exporter (default dynamo)")
    g.add_argument("--report", type=Path, metavar="FILE.json", help="also write the export report as JSON")


def is_model_target(args: argparse.Namespace) -> bool:
    fmt = getattr(args, "format", None)
    return fmt == "onnx" or (fmt is None and (Path(args.workspace) / "model.yaml").is_file())


def run_model_export(args: argparse.Namespace) -> int:
    from pixlabel.export.pipeline import ExportOptions, export_model

    if args.out is None:
        raise InputError("pixlabel export MODEL_DIR --format onnx needs --out FILE.onnx")
    opts = ExportOptions(int8=args.int8, calib=args.calib, calib_count=args.calib_count, prune=args.prune,
                         structured=args.structured, labeled=args.labeled, finetune_epochs=args.finetune_epochs,
                         exporter=args.exporter)
    report = export_model(args.workspace, args.out, opts)
    for line in report.lines():
        print(line)
    if args.report is not None:
        args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
