"""``pixlabel suggest IMAGES [--labels SEED.csv] --budget N --out suggest.csv``: which images to label next."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "pixlabel"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "suggest", help="the images a person should label next, best first",
        description="Cold start (no labels): TypiClust — the most typical image of each of the largest "
                    "unlabeled clusters. With labels: the most uncertain images under Poisson learning, spread "
                    "over clusters so no two suggestions are near-duplicates.")
    p.add_argument("images")
    p.add_argument("--labels", help="SEED.csv (path,label) of what is labeled already")
    p.add_argument("--budget", type=int, required=True, help="how many images to suggest")
    p.add_argument("--out", type=Path, required=True, help="CSV to write: path,rank,strategy")
    p.add_argument("--backbone", default=None)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"embedding cache (default {DEFAULT_CACHE})")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pixlabel.backbones import DEFAULT_BACKBONE, create_backbone
    from pixlabel.backbones.embed import embed_files
    from pixlabel.errors import InputError
    from pixlabel.io.ingest import ingest
    from pixlabel.labelers.poisson import PoissonLabeler
    from pixlabel.labelers.protocol import Pool
    from pixlabel.pipeline.seeds import check_seeds, seeds_from_csv
    from pixlabel.trust.suggest import suggest

    if args.budget < 1:
        raise InputError(f"--budget must be at least 1, got {args.budget}")
    scanned = ingest(args.images, decode=False)
    backbone = create_backbone(args.backbone or DEFAULT_BACKBONE, image_size=args.image_size)
    emb = embed_files(scanned.images, backbone, cache_dir=args.cache)
    paths = [f.path for f in emb.files]
    row = {p: i for i, p in enumerate(paths)}
    labeled_idx = np.zeros(0, dtype=np.int64)
    probs = None
    if args.labels:
        seeds = seeds_from_csv(Path(args.labels), set(paths), bad_paths=dict(scanned.errors + emb.errors))
        classes = check_seeds(seeds, origin=args.labels)
        labeled_idx = np.array([row[p] for p in seeds], dtype=np.int64)
        y = np.array([classes.index(c) for c in seeds.values()])
        pool = Pool(emb.embeddings, None, args.seed)
        probs = PoissonLabeler().fit(pool, labeled_idx, y, n_classes=len(classes)).probs_
    picks = suggest(emb.embeddings, budget=args.budget, labeled_idx=labeled_idx, probs=probs, seed=args.seed)
    strategy = "uncertainty-diversity" if probs is not None else "typiclust"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "rank", "strategy"])
        w.writerows((paths[i], r, strategy) for r, i in enumerate(picks, start=1))
    print(f"wrote {len(picks)} suggestions ({strategy}) to {args.out}")
    return 0
