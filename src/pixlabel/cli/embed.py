"""``pixlabel embed IMAGES --out DIR``: one embedding row per readable image, for use outside pixlabel.

Writes ``DIR/embeddings.npy`` (N x D float32), ``DIR/index.csv`` (``path`` header, then the relative path
of row i on line i + 2) and ``DIR/errors.csv`` (``path,reason`` of every unreadable image).

>>> main(["embed", "photos", "--image-size", "128", "--out", "emb"])  # doctest: +SKIP
embedded 1200 images (1280 dims, tf_efficientnet_lite0 at 128 px) into emb; 2 unreadable (see emb/errors.csv)
0
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from pixlabel.backbones.registry import DEFAULT_BACKBONE
from pixlabel.cli.argtypes import positive_int
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "embed",
        help="compute an embedding per image (embeddings.npy + index.csv)",
        description="Run a pretrained backbone over every image under IMAGES and write DIR/embeddings.npy "
        "(N x D float32), DIR/index.csv (the image path of each row, same order) and DIR/errors.csv "
        "(unreadable images; they never fail the run).",
    )
    p.add_argument("images", type=Path, metavar="IMAGES", help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the outputs to")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, metavar="NAME",
                   help=f"timm model name, or torchvision/NAME (default {DEFAULT_BACKBONE}, works offline)")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="local state dict for the backbone (.pth/.pt/.safetensors); needed offline for "
                   "any backbone but the default")
    p.add_argument("--image-size", type=positive_int, default=96, metavar="S",
                   help="images are resized to S x S pixels (default 96; raise it for fine detail)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                   help="images per model call (default 64)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 where the CPU computes it natively, else fp32 (default auto)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="embedding cache folder: re-runs and renamed files reuse embeddings (default: none)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="N",
                   help="decoding threads (default 2)")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images with more than N pixels (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where embedding runs: local (default) or ray (Ray Data actor pool)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster address (with --engine ray; default: start a local Ray)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # heavy imports (torch, timm) only when the command runs, so `pixlabel --help` stays fast
    from pixlabel.backbones import create_backbone
    from pixlabel.engines import get_engine
    from pixlabel.io.ingest import ingest, write_errors_csv

    scanned = ingest(args.images, decode=False, max_pixels=args.max_pixels, workers=args.workers)
    if not scanned.images and not scanned.errors:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InputError(f"no images found under {args.images} (looked for {exts}; hidden files are skipped)")
    backbone = create_backbone(args.backbone, weights=args.weights, image_size=args.image_size)
    engine = get_engine(args.engine, address=args.ray_address)
    result = engine.embed(scanned.images, backbone, cache_dir=args.cache, batch_size=args.batch_size,
                          workers=args.workers, precision=args.precision, max_pixels=args.max_pixels)
    errors = sorted(scanned.errors + result.errors)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", result.embeddings.astype(np.float32, copy=False))
    with (out / "index.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path"])
        writer.writerows([f.path] for f in result.files)
    write_errors_csv(errors, out / "errors.csv")

    n, dim = result.embeddings.shape
    see = f" (see {out / 'errors.csv'})" if errors else ""
    print(f"embedded {n} images ({dim} dims, {backbone.name} at {backbone.image_size} px) into {out}; "
          f"{len(errors)} unreadable{see}")
    return 0
