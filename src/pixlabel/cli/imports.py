"""``pixlabel import WS --from label-studio|cvat FILE``: reviews made in an annotation tool become human labels.

Each reviewed image gets exactly the reviewed labels (history keeps what they replaced); images nobody
reviewed in the tool are left alone. WS/labels.csv is written again afterwards.

Example::

    pixlabel import runs/pets --from label-studio project-1-at-2026-12-05.json
    pixlabel import runs/pets --from cvat annotations.xml --actor ana
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.interop import IMPORT_TOOLS, import_review
from pixlabel.io.formats import FormatWarning
from pixlabel.store import open_store
from pixlabel.workspace import Workspace

SHOWN_WARNINGS = 10


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import", help="bring annotations reviewed in Label Studio or CVAT back as human labels",
        description="Store the annotations in FILE (a Label Studio JSON export, or CVAT for images 1.1 XML) "
                    "as human labels: each reviewed image gets exactly its reviewed labels, the change is "
                    "kept in the store's history, and WS/labels.csv is written again.")
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace directory")
    p.add_argument("--from", dest="tool", required=True, choices=list(IMPORT_TOOLS), metavar="TOOL",
                   help=f"the file's format: {', '.join(IMPORT_TOOLS)}")
    p.add_argument("file", type=Path, metavar="FILE", help="the tool's export (JSON or XML)")
    p.add_argument("--db", metavar="URL", default=None, help="label store (default: WS/pixlabel.db)")
    p.add_argument("--actor", default="", help="who the history names for these changes (default: the tool)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ws = Workspace(args.workspace)
    if args.db is None and not ws.db_path.is_file():
        raise InputError(f"{ws.db_path}: no label store in this workspace; label images first or pass --db URL")
    if not args.file.is_file():
        raise InputError(f"{args.file}: file not found")
    with warnings.catch_warnings(record=True) as recorded, open_store(args.db or ws.db_path) as store:
        warnings.simplefilter("always", FormatWarning)
        result = import_review(store, args.tool, args.file, actor=args.actor)
        if args.db is None:
            store.export_labels_csv(ws.labels_csv)
    caught = [w for w in recorded if issubclass(w.category, FormatWarning)]
    for w in caught[:SHOWN_WARNINGS]:
        print(f"warning: {w.message}", file=sys.stderr)
    if len(caught) > SHOWN_WARNINGS:
        print(f"… and {len(caught) - SHOWN_WARNINGS} more warning(s)", file=sys.stderr)
    put = result.put
    print(f"imported {result.labels} human labels on {result.reviewed} reviewed images from {args.file} "
          f"({put.inserted} added, {put.updated} changed, {put.deleted} removed, {put.unchanged} unchanged; "
          f"{result.skipped_tasks} images without a review left alone)")
    if result.new_classes:
        print(f"new classes: {', '.join(result.new_classes)}")
    return 0
