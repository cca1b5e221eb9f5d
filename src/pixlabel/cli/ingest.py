"""``pixlabel ingest IMAGES --out WS``: scan a folder, list unreadable images in ``WS/errors.csv``.

>>> main(["ingest", "photos", "--out", "ws"])  # doctest: +SKIP
12 images, 3 unreadable (see ws/errors.csv)
0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from pixlabel.io.ingest import ingest
from pixlabel.io.properties import read_properties
from pixlabel.records import AttributeValue
from pixlabel.store import open_store
from pixlabel.workspace import Workspace


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="scan an image folder and list unreadable files in errors.csv",
        description="Find every image under IMAGES, check that each one decodes, and write the ones that "
        "do not to WS/errors.csv. Bad files never fail the run.",
    )
    p.add_argument("images", type=Path, metavar="IMAGES", help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, metavar="WS", help="workspace folder to write to")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images with more than N pixels (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--db", help="database URL (default: WS/pixlabel.db)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="N",
                   help="decoding threads (default 2)")
    p.add_argument("--properties", action="store_true",
                   help="also store each image's width, height, aspect, grey, sharpness/blurry and dominant colour "
                        "names (exported to Label Studio task data, FiftyOne fields and COCO images)")
    p.set_defaults(func=run)


def _size(props: dict[str, AttributeValue] | None) -> tuple[int, int] | None:
    return None if props is None else (int(props["height"]), int(props["width"]))


def run(args: argparse.Namespace) -> int:
    result = ingest(args.images, max_pixels=args.max_pixels, workers=args.workers)
    total = len(result.images) + len(result.errors)
    if total == 0:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InputError(f"no images found under {args.images} (looked for {exts}; hidden files are skipped)")
    ws = Workspace.create(args.out)
    props: dict[str, dict[str, AttributeValue]] = {}
    if args.properties:
        props, failed = read_properties(result.images, workers=args.workers, max_pixels=args.max_pixels)
        result.errors = sorted(result.errors + failed)
    with open_store(args.db or ws.db_path) as store:
        moved = store.sync_images((f.path, f.content_hash, _size(props.get(f.path))) for f in result.images).moved
        store.record_errors(result.errors)
        store.export_errors_csv(ws.errors_csv)
        if props:
            store.set_image_attributes(props)
            print(f"stored properties of {len(props)} images (width, height, aspect, grey, sharpness, blurry, "
                  "colors)")
    if moved:
        print(f"{moved} moved or renamed image(s) recognised by content; their labels moved with them")
    see = f" (see {ws.errors_csv})" if result.errors else ""
    noun = "image" if total == 1 else "images"
    print(f"{total} {noun}, {len(result.errors)} unreadable{see}")
    return 0
