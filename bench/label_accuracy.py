"""Fashion-MNIST auto-labeling benchmark: accuracy on the unlabeled pool at 1 / 10 / 100 labels per class,
accepted precision/coverage, ECE against the truth, and sklearn LabelSpreading on the same embeddings.

    .venv/bin/python bench/label_accuracy.py --size 0 --seeds 0 1 2 --per-class 1 10 100

Embeddings are computed once (cached by content hash under --work) and shared by every configuration; the
end-to-end wall time of one full `pixlabel label` run is measured separately by `pixlabel demo --size 0`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pixlabel.backbones import create_backbone
from pixlabel.backbones.embed import embed_files
from pixlabel.datasets import default_dataset, pick_seeds, subsample, write_image_folder
from pixlabel.io.ingest import ingest
from pixlabel.labelers.baselines import LabelSpreadingLabeler
from pixlabel.labelers.protocol import Pool
from pixlabel.pipeline.decide import decide
from pixlabel.trust.calibrate import expected_calibration_error


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=0, help="0 = all 70k")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--per-class", type=int, nargs="+", default=[10, 1, 100])
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--rounds", type=int, default=1, help="self-training rounds")
    ap.add_argument("--epochs", type=int, default=8, help="self-training CNN epochs per round")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/label_accuracy.json"))
    args = ap.parse_args()

    ds = subsample(default_dataset(), args.size or None, seed=0)
    paths = write_image_folder(ds, args.work / "data")
    t0 = time.perf_counter()
    scanned = ingest(args.work / "data" / "images", decode=False)
    emb = embed_files(scanned.images, create_backbone(image_size=args.image_size), cache_dir=args.work / "cache")
    embed_s = time.perf_counter() - t0
    order = {p: i for i, p in enumerate(paths)}
    y_all = ds.labels[[order[f.path] for f in emb.files]]
    pool = Pool(emb.embeddings, emb.thumbs, 0)
    rows = []
    for per_class in args.per_class:
        for seed in args.seeds:
            labeled = pick_seeds(y_all, per_class=per_class, seed=seed)
            mask = np.ones(len(y_all), bool)
            mask[labeled] = False
            t = time.perf_counter()
            d = decide(Pool(pool.embeddings, pool.thumbs, seed), labeled, y_all[labeled], n_classes=10,
                       method=args.method, seed=seed, selftrain_rounds=args.rounds,
                       selftrain_epochs=args.epochs)
            label_s = time.perf_counter() - t
            pred = d.probs.argmax(1)
            correct = pred == y_all
            acc = d.confidence >= d.threshold.threshold
            t = time.perf_counter()
            ls = LabelSpreadingLabeler().fit(pool, labeled, y_all[labeled], n_classes=10)
            ls_s = time.perf_counter() - t
            row = {
                "per_class": per_class, "seed": seed, "method": d.method, "n_pool": int(mask.sum()),
                "accuracy": float(correct[mask].mean()),
                "accepted_precision": float(correct[mask & acc].mean()) if (mask & acc).any() else None,
                "accepted_coverage": float((mask & acc).sum() / mask.sum()),
                "ece": float(expected_calibration_error(d.confidence[mask], correct[mask])),
                # mean confidence vs accuracy on the pool: over- (>) or under-confidence (<) behind the ECE
                "mean_confidence": float(d.confidence[mask].mean()),
                "cv": {k: v.accuracy for k, v in d.cv.items()},
                "label_seconds": round(label_s, 1),
                "labelspreading_accuracy": float((ls.probs_.argmax(1) == y_all)[mask].mean()),
                "labelspreading_seconds": round(ls_s, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"dataset": ds.name, "method": args.method, "selftrain_rounds": args.rounds,
              "selftrain_epochs": args.epochs, "images": len(y_all),
              "image_size": args.image_size,
              "embed_seconds": round(embed_s, 1), "runs": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))


def table(result: dict) -> str:
    lines = ["| labels/class | seed | method | accuracy | LabelSpreading | accepted precision | coverage | ECE "
             "| label s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        prec = f"{r['accepted_precision']:.1%}" if r["accepted_precision"] is not None else "n/a"
        lines.append(f"| {r['per_class']} | {r['seed']} | {r['method']} | {r['accuracy']:.1%} | "
                     f"{r['labelspreading_accuracy']:.1%} | {prec} | {r['accepted_coverage']:.1%} | "
                     f"{r['ece']:.1%} | {r['label_seconds']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
