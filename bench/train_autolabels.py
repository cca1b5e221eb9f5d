"""Benchmark 2: train on pixlabel's own auto-labels (10 human labels per class) vs the true labels of the
same images, and score both on the 10k Fashion-MNIST test set. Writes ``bench/out/train_autolabels.json``.

Steps, as a user would run them: write N training images as PNGs, ``pixlabel label IMAGES --labels
seeds.csv --out WS`` (10 seeds/class), then ``pixlabel train`` three times with the same settings: on every
row of WS/labels.csv, on ``--accepted-only`` rows, and on a truth.csv of the same images.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/train_autolabels.py --size 20000 --epochs 8
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from train_common import OUT, fmnist, predict

from pixlabel.datasets import ArrayDataset, pick_seeds, subsample, write_image_folder
from pixlabel.models.spec import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench-autolabels"))
    ap.add_argument("--reuse-models", action="store_true",
                    help="score the models already in --work (train times from the previous JSON) instead of training")
    args = ap.parse_args()
    torch.set_num_threads(2)
    x, y, x_te, y_te, classes = fmnist()
    ds = subsample(ArrayDataset("fmnist-train", x[:, 0], y, classes), args.size, seed=0)
    data = args.work / "data"
    paths = write_image_folder(ds, data)
    truth = {f"{p}": classes[k] for p, k in zip(paths, ds.labels, strict=True)}
    seeds = pick_seeds(ds.labels, per_class=10, seed=0)
    images = data / "images"
    with (args.work / "seeds.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows([paths[i], classes[ds.labels[i]]] for i in seeds)
    with (args.work / "truth.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows(truth.items())
    cli = [sys.executable, "-m", "pixlabel.cli.main", "-q"]
    ws = args.work / "ws"
    t = time.perf_counter()
    if not (ws / "labels.csv").is_file():
        subprocess.run(cli + ["label", str(images), "--labels", str(args.work / "seeds.csv"), "--out", str(ws),
                              "--seed", "0"], check=True)
    label_s = time.perf_counter() - t
    auto = list(csv.DictReader((ws / "labels.csv").open()))
    acc_all = float(np.mean([truth[r["path"]] == r["label"] for r in auto]))
    accepted = [r for r in auto if r["status"] == "accepted"]
    acc_accepted = float(np.mean([truth[r["path"]] == r["label"] for r in accepted]))
    runs = {"auto labels (all rows)": ["--labels", str(ws / "labels.csv")],
            "auto labels (--accepted-only)": ["--labels", str(ws / "labels.csv"), "--accepted-only"],
            "true labels": ["--labels", str(args.work / "truth.csv")]}
    previous = json.loads((OUT / "train_autolabels.json").read_text()) if args.reuse_models else {"rows": []}
    wall = {r["labels"]: r["train_wall_s"] for r in previous["rows"]}
    rows = []
    for name, extra in runs.items():
        out = args.work / ("model-" + name.split()[0] + ("-accepted" if "accepted" in name else ""))
        t = time.perf_counter()
        if not (args.reuse_models and (out / "weights.pt").is_file()):
            subprocess.run(cli + ["train", str(images), *extra, "--out", str(out), "--epochs", str(args.epochs),
                                  "--augment", "basic", "--restart"], check=True)
        train_s = wall.get(name) if args.reuse_models else round(time.perf_counter() - t, 1)
        module, spec = load_model(out)
        n_rows = sum(1 for _ in csv.DictReader((out / "split.csv").open()))
        # The model's classes are sorted names; compare names, not Fashion-MNIST's own index order.
        predicted = np.array(spec.classes)[predict(module, spec, x_te)]
        rows.append({"labels": name, "n_train_rows": n_rows,
                     "test_accuracy": float((predicted == np.array(classes)[y_te]).mean()), "train_wall_s": train_s})
        print(json.dumps(rows[-1]), flush=True)
    report = {"n_images": args.size, "seeds_per_class": 10, "epochs": args.epochs, "label_wall_s": round(label_s, 1),
              "auto_label_accuracy_all": acc_all, "auto_label_accuracy_accepted": acc_accepted,
              "accepted_share": len(accepted) / len(auto), "rows": rows,
              "gap_all_vs_truth": rows[2]["test_accuracy"] - rows[0]["test_accuracy"],
              "gap_accepted_vs_truth": rows[2]["test_accuracy"] - rows[1]["test_accuracy"]}
    OUT.mkdir(exist_ok=True)
    (OUT / "train_autolabels.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
