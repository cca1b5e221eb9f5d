"""``pixlabel generate IMAGES --labels labels.csv (--per-class N [--classes a,b] | --balance) --out DIR``:
train a class-conditional GAN on labeled images and write synthetic labeled images.

Example::

    pixlabel generate data --labels data/labels.csv --classes cat --per-class 500 --out synth
    pixlabel generate data --balance --out synth --steps 4000   # ImageFolder input; resumes synth/checkpoint.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int


def register(sub: Any) -> None:
    p = sub.add_parser(
        "generate", help="make synthetic labeled images with a class-conditional GAN",
        description="Train (or resume) a class-conditional GAN on the labeled images in IMAGES and write "
                    "DIR/images/<class>/*.png, DIR/labels.csv (source=synthetic, confidence = the fidelity "
                    "classifier's probability of the intended class), DIR/report.html with quality metrics "
                    "(FID, class fidelity, diversity, CAS) and DIR/checkpoint.pt (re-run to resume).")
    p.add_argument("images", type=Path, help="folder of images (ImageFolder layout unless --labels is given)")
    p.add_argument("--labels", type=Path, help="labels.csv with path,label (paths relative to IMAGES); "
                                               "only accepted, non-synthetic labels are used")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--classes", help="comma-separated classes to generate (default: every class)")
    what.add_argument("--balance", action="store_true", help="top every class up to the largest class")
    p.add_argument("--per-class", type=positive_int, help="images to generate per class")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--image-size", type=positive_int, default=32, help="square size, power of two 16-128 (32)")
    p.add_argument("--steps", type=int, default=3000, help="total GAN training steps (3000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--min-images", type=positive_int, default=10,
                   help="refuse classes with fewer readable images than this (10)")
    p.add_argument("--truncation", type=float,
                   help="sample latents truncated at |z| <= T (e.g. 1.0): higher class fidelity, lower diversity")
    p.add_argument("--backbone", help="backbone for the quality metrics (default: offline tf_efficientnet_lite0)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's; 1 is fastest on a busy CPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixlabel.errors import InputError
    from pixlabel.generate.run import GenerateConfig, generate

    if args.balance and args.per_class is not None:
        raise InputError("--balance decides the counts itself: drop --per-class")
    classes = None
    if args.classes is not None:
        classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
        if not classes:
            raise InputError(f"--classes: expected a comma-separated list of class names, got {args.classes!r}")
    cfg = GenerateConfig(per_class=args.per_class, classes=classes, balance=args.balance,
                         image_size=args.image_size, steps=args.steps, seed=args.seed,
                         min_images=args.min_images, backbone=args.backbone,
                         threads=args.threads, truncation=args.truncation)
    r = generate(args.images, args.labels, args.out, cfg)
    q = r.quality
    print(f"GAN: {r.step} steps (resumed from {r.resumed_from}), training {r.train_seconds:.0f} s")
    print(f"wrote {sum(r.counts.values())} images to {r.out / 'images'}: "
          + ", ".join(f"{c} {n}" for c, n in r.counts.items()))
    print(f"quality: FID {q.fid:.2f}, class fidelity {100 * q.fidelity:.1f}% "
          f"(real held-out {100 * q.fidelity_ceiling:.1f}%), lowest class diversity {100 * q.min_diversity:.0f}% "
          f"of real, CAS {100 * q.cas:.1f}%")
    print(f"labels: {r.out / 'labels.csv'}  report: {r.out / 'report.html'}")
    return 0
