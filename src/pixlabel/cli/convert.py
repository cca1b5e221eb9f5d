"""``pixlabel convert SRC --from F [--labels FILE] --to G --out DIR``: change a dataset's label format."""

from __future__ import annotations

import argparse
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from pixlabel.io.convert import FORMAT_HELP, FORMATS, convert
from pixlabel.io.formats._common import FormatWarning

SHOWN_WARNINGS = 10


def register(sub: Any) -> None:
    formats = "\n".join(
        textwrap.fill(text, width=88, initial_indent=f"  {name:<12} ", subsequent_indent=" " * 15)
        for name, text in FORMAT_HELP.items()
    )
    p = sub.add_parser(
        "convert",
        help="convert labels between imagefolder, csv, coco, yolo, voc, label-studio and cvat (images copied along)",
        description="Read a labelled dataset in one format and write it, with its images, in another.",
        epilog=f"formats:\n{formats}\n\nexample:\n  pixlabel convert photos/ --from coco --labels "
               "photos/instances.json --to yolo --out photos-yolo/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", metavar="SRC", type=Path,
                   help="dataset folder (yolo, voc, imagefolder) or image folder (csv, coco)")
    p.add_argument("--from", dest="src_format", required=True, choices=list(FORMATS), metavar="F",
                   help=f"source format: {', '.join(FORMATS)}")
    p.add_argument("--labels", type=Path, metavar="FILE",
                   help="the annotation file for --from csv, coco, label-studio or cvat")
    p.add_argument("--to", dest="dst_format", required=True, choices=list(FORMATS), metavar="G",
                   help=f"target format: {', '.join(FORMATS)}")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="new or empty output folder (nothing is overwritten)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always", FormatWarning)  # every repair counts, even repeats of one message
        dataset = convert(args.src, src_format=args.src_format, labels_file=args.labels,
                          dst_format=args.dst_format, out=args.out)
    caught = [w for w in recorded if issubclass(w.category, FormatWarning)]
    for w in recorded:
        if not issubclass(w.category, FormatWarning):  # library warnings go out the way they came
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for w in caught[:SHOWN_WARNINGS]:
        print(f"warning: {w.message}", file=sys.stderr)
    if len(caught) > SHOWN_WARNINGS:
        print(f"… and {len(caught) - SHOWN_WARNINGS} more warning(s)", file=sys.stderr)
    kinds = Counter("mask" if lab.mask else "box" if lab.box else "class" for lab in dataset.labels)
    detail = ", ".join(f"{kinds[k]} {k}" for k in ("box", "mask", "class") if kinds[k])
    print(f"converted {args.src_format} -> {args.dst_format}: {len(dataset.images)} images, "
          f"{len(dataset.labels)} labels" + (f" ({detail})" if detail else "")
          + f", {len(dataset.ontology)} classes, {len(caught)} warning(s)")
    print(f"written to {args.out}")
    return 0
