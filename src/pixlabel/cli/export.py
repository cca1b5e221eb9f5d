"""``pixlabel export WS``: write WS/labels.csv and WS/errors.csv again from the label store.
``pixlabel export MODEL_DIR --format onnx --out model.onnx``: export a trained model (see pixlabel.export).

Example::

    pixlabel export runs/pets                                  # reads runs/pets/pixlabel.db
    pixlabel export runs/pets --db postgresql://u:pw@host/pixlabel
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.export.cli import add_model_args, is_model_target, run_model_export
from pixlabel.store import open_store
from pixlabel.workspace import Workspace


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="re-export labels.csv and errors.csv from the label store",
        description="Write WS/labels.csv (path,label,confidence,source,status,...) and WS/errors.csv "
                    "(path,reason) from the workspace's label store.",
    )
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace directory (or MODEL_DIR for onnx)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="label store: a path or a sqlite:/// or postgresql:// URL (default: WS/pixlabel.db)")
    p.add_argument("--format", choices=("csv", "onnx"), default=None,
                   help="csv: labels of a workspace (default); onnx: a model directory (default if it has "
                        "model.yaml)")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if is_model_target(args):
        return run_model_export(args)
    ws = Workspace(args.workspace)
    if not ws.root.is_dir():
        raise InputError(f"{ws.root}: workspace directory not found")
    if args.db is None and not ws.db_path.is_file():
        # Opening would create an empty store and export nothing: almost surely the wrong directory.
        raise InputError(f"{ws.db_path}: no label store in this workspace; "
                         "label images first or pass --db URL")
    with open_store(args.db if args.db is not None else ws.db_path) as store:
        n_labels = store.export_labels_csv(ws.labels_csv)
        n_errors = store.export_errors_csv(ws.errors_csv)
        if store.has_boxes():  # a detection workspace: its boxes, reviewers' included, as COCO too
            from pixlabel.io.formats.coco import write_coco

            write_coco(store.box_dataset(), ws.root / "labels.coco.json")
            print(f"wrote boxes to {ws.root / 'labels.coco.json'}")
    print(f"wrote {n_labels} labels to {ws.labels_csv} and {n_errors} errors to {ws.errors_csv}")
    return 0
