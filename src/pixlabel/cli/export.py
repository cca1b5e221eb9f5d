"""``pixlabel export WS``: write WS/labels.csv and WS/errors.csv again from the label store.
``pixlabel export WS --to label-studio|cvat|fiftyone|coco --out PATH``: the labels for an annotation tool.
``pixlabel export MODEL_DIR --format onnx --out model.onnx``: export a trained model (see pixlabel.export).

Example::

    pixlabel export runs/pets                                  # reads runs/pets/pixlabel.db
    pixlabel export runs/pets --db postgresql://u:pw@host/pixlabel
    pixlabel export runs/pets --to label-studio --out pets.tasks.json   # + pets.tasks.config.xml
    pixlabel export runs/pets --to cvat --out annotations.xml
    pixlabel export runs/pets --to fiftyone --out pets-fo/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.export.cli import add_model_args, is_model_target, run_model_export
from pixlabel.interop import EXPORT_TOOLS, export_workspace
from pixlabel.review.files import image_root
from pixlabel.store import LabelStore, open_store
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
    tools = p.add_argument_group("labels for annotation tools (WS --to TOOL --out PATH)")
    tools.add_argument("--to", choices=list(EXPORT_TOOLS), metavar="TOOL",
                       help="label-studio: tasks JSON with predictions + labeling config XML beside it; "
                            "cvat: CVAT for images 1.1 XML; fiftyone: a dataset folder for fo.Dataset.from_dir; "
                            "coco: boxes/masks (OCR transcripts as 'text') as COCO JSON")
    tools.add_argument("--image-url", metavar="PREFIX",
                       help="label-studio: URL prefix before each image path (default /data/local-files/?d=)")
    tools.add_argument("--images", type=Path, metavar="FOLDER",
                       help="the image folder (default: the one recorded in WS/config.yaml)")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.to is not None:
        return run_tool_export(args)
    if is_model_target(args):
        return run_model_export(args)
    ws = Workspace(args.workspace)
    with _open(args) as store:
        n_labels = store.export_labels_csv(ws.labels_csv)
        n_errors = store.export_errors_csv(ws.errors_csv)
        if store.has_boxes():  # a detection workspace: its boxes, reviewers' included, as COCO too
            from pixlabel.io.formats.coco import write_coco

            write_coco(store.box_dataset(), ws.root / "labels.coco.json")
            print(f"wrote boxes to {ws.root / 'labels.coco.json'}")
    print(f"wrote {n_labels} labels to {ws.labels_csv} and {n_errors} errors to {ws.errors_csv}")
    return 0


def _open(args: argparse.Namespace) -> LabelStore:
    ws = Workspace(args.workspace)
    if not ws.root.is_dir():
        raise InputError(f"{ws.root}: workspace directory not found")
    if args.db is None and not ws.db_path.is_file():
        # Opening would create an empty store and export nothing: almost surely the wrong directory.
        raise InputError(f"{ws.db_path}: no label store in this workspace; "
                         "label images first or pass --db URL")
    return open_store(args.db if args.db is not None else ws.db_path)


def run_tool_export(args: argparse.Namespace) -> int:
    if args.out is None:
        raise InputError(f"--to {args.to} needs --out PATH (a file; a new folder for fiftyone)")
    try:
        images: Path | None = image_root(Workspace(args.workspace), args.images)
    except InputError:
        if args.images is not None or args.to == "fiftyone":  # fiftyone's file paths need the folder
            raise
        images = None  # the others name images by their workspace paths
    with _open(args) as store:
        result = export_workspace(store, args.to, args.out, image_url=args.image_url, images_root=images)
    print(f"wrote {result.labels} labels on {result.images} images for {args.to}: "
          + ", ".join(str(f) for f in result.files))
    if result.hint:
        print(result.hint)
    return 0
