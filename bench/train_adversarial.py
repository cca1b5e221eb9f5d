"""Benchmark 4: PGD robust accuracy of a PGD-trained model vs a standard one, and the clean-accuracy cost.

Both train on the same 8k Fashion-MNIST images for the same epochs (no augmentation); adversarial training
uses PGD-5 at eps (L-inf in [0, 1] pixel space, before normalisation). Robust accuracy: PGD-20 with a random
start, step 2.5·eps/20, and FGSM, on the first 1000 test images. Writes ``bench/out/train_adversarial.json``.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/train_adversarial.py --eps 0.1
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch
from train_common import OUT, fit_arrays, fmnist, predict

from pixlabel.train.attacks import PixelSpace, perturb


def robust_accuracy(module: torch.nn.Module, spec, x: np.ndarray, y: np.ndarray, *, kind: str, eps: float,
                    steps: int) -> float:
    net = PixelSpace(module, spec.mean, spec.std).eval()
    correct = 0
    for i in range(0, len(x), 500):
        xb = torch.from_numpy(x[i:i + 500]).float().div(255)
        yb = torch.from_numpy(y[i:i + 500])
        adv = perturb(net, xb, yb, kind=kind, eps=eps, steps=steps)
        with torch.inference_mode():
            correct += int((net(adv).argmax(1) == yb).sum())
    return correct / len(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n-attack", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    x, y, x_te, y_te, classes = fmnist()
    idx = np.random.default_rng(0).permutation(len(y))[: args.n_train]
    rows = []
    for mode in ("none", "pgd"):
        t = time.perf_counter()
        _, module, spec = fit_arrays(x[idx], y[idx], classes, epochs=args.epochs, augment="none", adversarial=mode,
                                     eps=args.eps, attack_steps=5)
        train_s = time.perf_counter() - t
        clean = float((predict(module, spec, x_te) == y_te).mean())
        xa, ya = x_te[: args.n_attack], y_te[: args.n_attack]
        rows.append({"training": "standard" if mode == "none" else "PGD-5 adversarial", "clean_accuracy": clean,
                     "pgd20_robust_accuracy": robust_accuracy(module, spec, xa, ya, kind="pgd", eps=args.eps,
                                                              steps=20),
                     "fgsm_robust_accuracy": robust_accuracy(module, spec, xa, ya, kind="fgsm", eps=args.eps,
                                                             steps=1),
                     "train_s": round(train_s, 1)})
        print(json.dumps(rows[-1]), flush=True)
    report = {"eps": args.eps, "space": "L-inf, [0,1] pixel intensities (before mean/std normalisation)",
              "n_train": args.n_train, "epochs": args.epochs, "n_attacked": args.n_attack, "rows": rows,
              "clean_accuracy_cost": rows[0]["clean_accuracy"] - rows[1]["clean_accuracy"]}
    OUT.mkdir(exist_ok=True)
    (OUT / "train_adversarial.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
