"""Which images to label: `suggest` (TypiClust cold start, then uncertainty × diversity) vs random picks at
equal budgets. Accuracy of Poisson learning on the rest of the pool after each step.

    .venv/bin/python bench/suggest_vs_random.py --size 20000 --steps 10 20 50 100 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pixlabel.backbones import create_backbone
from pixlabel.backbones.embed import embed_files
from pixlabel.datasets import default_dataset, subsample, write_image_folder
from pixlabel.io.ingest import ingest
from pixlabel.labelers.poisson import PoissonLabeler
from pixlabel.labelers.protocol import Pool
from pixlabel.trust.suggest import random_baseline, suggest


def accuracy(pool: Pool, labeled: np.ndarray, y: np.ndarray) -> float | None:
    if len(np.unique(y[labeled])) < len(np.unique(y)):
        return None  # some class still unseen: Poisson cannot label it
    probs = PoissonLabeler().fit(pool, labeled, y[labeled], n_classes=int(y.max()) + 1).probs_
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    return float((probs.argmax(1)[rest] == y[rest]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 200])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench-suggest"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/suggest_vs_random.json"))
    args = ap.parse_args()
    ds = subsample(default_dataset(), args.size, seed=args.seed)
    paths = write_image_folder(ds, args.work / "data")
    emb = embed_files(ingest(args.work / "data" / "images", decode=False).images, create_backbone(image_size=96),
                      cache_dir=args.work / "cache")
    order = {p: i for i, p in enumerate(paths)}
    y = ds.labels[[order[f.path] for f in emb.files]]
    pool = Pool(emb.embeddings, None, args.seed)
    rows = []
    for strategy in ("suggest", "random"):
        labeled = np.zeros(0, dtype=np.int64)
        probs = None
        for total in args.steps:
            budget = total - len(labeled)
            if strategy == "random":
                new = random_baseline(len(y), budget=budget, labeled_idx=labeled, seed=args.seed)
            else:
                new = suggest(emb.embeddings, budget=budget, labeled_idx=labeled, probs=probs, seed=args.seed)
            labeled = np.concatenate([labeled, new])
            acc = accuracy(pool, labeled, y)
            classes_seen = int(len(np.unique(y[labeled])))
            if acc is not None:
                probs = PoissonLabeler().fit(pool, labeled, y[labeled], n_classes=int(y.max()) + 1).probs_
            rows.append({"strategy": strategy, "labels": int(len(labeled)), "classes_seen": classes_seen,
                         "accuracy": acc})
            print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dataset": ds.name, "images": len(y), "seed": args.seed, "runs": rows},
                                   indent=2))


if __name__ == "__main__":
    main()
