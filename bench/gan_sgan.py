"""Semi-supervised GAN labeler (`--method sgan`) beside Poisson learning (the default) at 10 labels/class.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/gan_sgan.py --datasets mnist-5k fashion-10k --seeds 0

Both labelers see what the pipeline gives them: Poisson the backbone embeddings (Lite0 at 96 px, cached),
SGAN the pool's 32-px thumbnails from the same embedding pass. Accuracy is on the unlabeled pool.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import pixlabel.progress as progress
from pixlabel.backbones import create_backbone
from pixlabel.backbones.embed import embed_files
from pixlabel.datasets import ArrayDataset, default_dataset, mnist_5k, pick_seeds, subsample, write_image_folder
from pixlabel.io.ingest import ingest
from pixlabel.labelers.poisson import PoissonLabeler
from pixlabel.labelers.protocol import Pool
from pixlabel.labelers.sgan import SGANLabeler


def load(name: str) -> ArrayDataset:
    if name == "mnist-5k":
        return mnist_5k()
    if name == "fashion-10k":
        return subsample(default_dataset(), 10_000, seed=0)
    raise SystemExit(f"unknown dataset {name}")


def pool_of(ds: ArrayDataset, work: Path, cache: Path) -> tuple[Pool, np.ndarray]:
    paths = write_image_folder(ds, work / ds.name)
    scanned = ingest(work / ds.name / "images", decode=False)
    emb = embed_files(scanned.images, create_backbone(image_size=96), cache_dir=cache)
    order = {p: i for i, p in enumerate(paths)}
    y = ds.labels[[order[f.path] for f in emb.files]]
    return Pool(emb.embeddings, emb.thumbs, 0), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["mnist-5k", "fashion-10k"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--methods", nargs="+", default=["poisson", "sgan"], choices=["poisson", "sgan"])
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest while other jobs share the CPU")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-gan/sgan"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/pixlabel-bench/cache"), help="embedding cache")
    ap.add_argument("--out", type=Path, default=Path("bench/out/gan_sgan.json"))
    args = ap.parse_args()
    progress.set_enabled(False)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        ds = load(name)
        # Fashion-MNIST embeddings are already in label_accuracy's cache (same backbone and size, keyed by
        # content); MNIST gets its own, so this benchmark never writes into another one's cache
        pool, y = pool_of(ds, args.work, args.cache if name.startswith("fashion") else args.work / "cache")
        for seed in args.seeds:
            labeled = pick_seeds(y, per_class=args.per_class, seed=seed)
            rest = np.setdiff1d(np.arange(len(y)), labeled)
            p = Pool(pool.embeddings, pool.thumbs, seed)
            row: dict[str, object] = {"dataset": name, "n_pool": len(y), "per_class": args.per_class, "seed": seed}
            labelers = {"poisson": PoissonLabeler(), "sgan": SGANLabeler(steps=args.steps)}
            for method in args.methods:
                lab = labelers[method]
                t = time.perf_counter()
                probs = lab.fit(p, labeled, y[labeled], n_classes=len(ds.classes)).probs_
                row[f"{method}_accuracy"] = round(float((probs.argmax(1) == y)[rest].mean()), 4)
                row[f"{method}_seconds"] = round(time.perf_counter() - t, 1)
            row["sgan_steps"] = args.steps
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
