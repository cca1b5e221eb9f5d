"""Benchmark 3: long-tailed Fashion-MNIST (imbalance ratio 100, exponential profile) with each imbalance
remedy at the same budget. Class k keeps ``6000 * 100^(-k/9)`` training images (6000 … 60); the test set is
the balanced 10k. Writes ``bench/out/train_longtail.json``.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/train_longtail.py --epochs 8
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch
from sklearn.metrics import f1_score, recall_score
from train_common import OUT, fit_arrays, fmnist, predict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--ratio", type=float, default=100.0)
    ap.add_argument("--methods", nargs="+", default=["none", "weights", "focal", "oversample"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    x, y, x_te, y_te, classes = fmnist()
    rng = np.random.default_rng(0)
    counts = [int(round(6000 * args.ratio ** (-k / 9))) for k in range(10)]
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == k), n, replace=False) for k, n in enumerate(counts)]))
    minority = [7, 8, 9]  # the three rarest classes (165, 100, 60 images)
    rows = []
    for method in args.methods:
        t = time.perf_counter()
        _, module, spec = fit_arrays(x[idx], y[idx], classes, epochs=args.epochs, imbalance=method, augment="basic")
        pred = predict(module, spec, x_te)
        recall = recall_score(y_te, pred, labels=list(range(10)), average=None, zero_division=0)
        rows.append({"imbalance": method, "test_accuracy": float((pred == y_te).mean()),
                     "macro_f1": float(f1_score(y_te, pred, average="macro")),
                     "minority_recall": float(recall[minority].mean()), "rarest_class_recall": float(recall[9]),
                     "per_class_recall": [round(float(r), 4) for r in recall],
                     "train_s": round(time.perf_counter() - t, 1)})
        print(json.dumps(rows[-1]), flush=True)
    report = {"ratio": args.ratio, "train_counts": counts, "n_train": int(len(idx)), "epochs": args.epochs,
              "minority_classes": [classes[k] for k in minority], "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "train_longtail.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
