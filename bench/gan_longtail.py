"""Long-tailed Fashion-MNIST (imbalance ratio 100): does adding GAN samples help a small classifier?

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/gan_longtail.py --gan-steps 3000

Training set: Fashion-MNIST train images, class k keeps round(1000 * 0.01 ** (k / 9)) images (1000 ... 10).
Test set: 200 images per class from the Fashion-MNIST test split. One fixed classifier (pixlabel's SmallCNN,
width 16, 32 px grey, the same number of steps and seed for every variant):

- plain: the long-tailed set as it is
- oversample: class-balanced sampling of the real images
- augment+oversample: the same plus random shifts (±2 px) and horizontal flips (classic augmentation)
- gan: the real images plus `pixlabel generate --balance` samples (every class topped up to 1000)
- gan+filter(judge)+oversample: only synthetic images whose labels.csv confidence (the `generate` fidelity
  classifier's probability of the intended class, fitted on the real long-tailed images) is >= 0.5, i.e. the
  classifier assigns them to the intended class; class-balanced sampling over real + kept synthetic images
- gan+filter(cnn)+oversample: the same, but the filter is the `oversample` SmallCNN above (trained on the real
  images only): keep a synthetic image when its predicted class is the intended one

(`gan+oversample` is not run: after `--balance` every class has 1,000 images, so it equals `gan`.)

Minority recall is the mean recall of the three smallest classes (28, 17, 10 training images).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import pixlabel.progress as progress
from pixlabel.datasets import fashion_mnist
from pixlabel.generate.gan import GanConfig
from pixlabel.generate.run import GenerateConfig, generate
from pixlabel.models.smallcnn import SmallCNN

SIZE = 32


def to32(images: np.ndarray) -> np.ndarray:  # (N, 28, 28) -> (N, 1, 32, 32) uint8, as `generate` resizes
    return np.stack([np.asarray(Image.fromarray(im).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
                     for im in images])[:, None]


def long_tail(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    ds = fashion_mnist()
    rng = np.random.default_rng(seed)
    train_x, train_y = ds.images[:60000], ds.labels[:60000]
    counts = [round(1000 * 0.01 ** (k / 9)) for k in range(10)]
    idx = np.concatenate([rng.choice(np.flatnonzero(train_y == k), n, replace=False) for k, n in enumerate(counts)])
    test = np.concatenate([rng.choice(np.flatnonzero(ds.labels[60000:] == k), 200, replace=False) + 60000
                           for k in range(10)])
    return to32(train_x[idx]), train_y[idx], to32(ds.images[test]), ds.labels[test], ds.classes


def train_net(x: np.ndarray, y: np.ndarray, *, balanced: bool, augment: bool, steps: int, seed: int) -> SmallCNN:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x).float().div_(255).sub_(0.5).div_(0.5)
    yt = torch.from_numpy(y)
    net = SmallCNN(in_chans=1, num_classes=10, width=16)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    weights = torch.ones(len(y), dtype=torch.float64)
    if balanced:
        weights = 1.0 / torch.from_numpy(np.bincount(y, minlength=10)[y]).double()
    net.train()
    for _ in range(steps):
        b = torch.multinomial(weights, 64, replacement=True, generator=gen)
        xb = xt[b]
        if augment:
            xb = F.pad(xb, (2, 2, 2, 2), mode="replicate")
            dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
            xb = xb[:, :, dy:dy + SIZE, dx:dx + SIZE]
            flip = torch.rand(len(b), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
        loss = F.cross_entropy(net(xb), yt[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def predict(net: SmallCNN, x: np.ndarray) -> np.ndarray:  # (N, 1, S, S) uint8 -> (N,) class
    with torch.inference_mode():
        xt = torch.from_numpy(x).float().div_(255).sub_(0.5).div_(0.5)
        return torch.cat([net(xt[i:i + 500]).argmax(1) for i in range(0, len(xt), 500)]).numpy()


def scores(pred: np.ndarray, ty: np.ndarray) -> dict[str, object]:
    recall = [float((pred[ty == k] == k).mean()) for k in range(10)]
    prec = [float((ty[pred == k] == k).mean()) if (pred == k).any() else 0.0 for k in range(10)]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(prec, recall, strict=True)]
    return {"accuracy": round(float((pred == ty).mean()), 4), "macro_f1": round(float(np.mean(f1)), 4),
            "minority_recall": round(float(np.mean(recall[7:])), 4), "recall": [round(r, 3) for r in recall]}


def read_synthetic(out: Path, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic images (M, 1, S, S), their intended classes (M,) and labels.csv confidences (M,)."""
    with (out / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    x = np.stack([np.asarray(Image.open(out / r["path"]).convert("L"))[None] for r in rows])
    return x, np.array([classes.index(r["label"]) for r in rows]), np.array([float(r["confidence"]) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gan-steps", type=int, default=3000)
    ap.add_argument("--clf-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-gan/longtail"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/gan_longtail.json"))
    args = ap.parse_args()
    progress.set_enabled(False)
    torch.set_num_threads(args.threads)
    x, y, tx, ty, classes = long_tail(args.seed)
    folder = args.work / "data"
    for i, (img, k) in enumerate(zip(x, y, strict=True)):
        p = folder / classes[int(k)] / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            Image.fromarray(img[0]).save(p)
    t = time.perf_counter()
    res = generate(folder, None, args.work / f"synth-{args.gan_steps}",
                   GenerateConfig(balance=True, steps=args.gan_steps, seed=args.seed, threads=args.threads))
    gan_s = time.perf_counter() - t
    sx, sy, conf = read_synthetic(res.out, classes)
    rows: dict[str, dict[str, object]] = {}
    nets: dict[str, SmallCNN] = {}

    def run(name: str, vx: np.ndarray, vy: np.ndarray, *, balanced: bool, augment: bool = False) -> None:
        t = time.perf_counter()
        nets[name] = train_net(vx, vy, balanced=balanced, augment=augment, steps=args.clf_steps, seed=args.seed)
        rows[name] = {**scores(predict(nets[name], tx), ty), "n_train": len(vy),
                      "n_synthetic_per_class": np.bincount(vy[len(y):], minlength=10).tolist(),
                      "seconds": round(time.perf_counter() - t, 1)}
        print(name, json.dumps(rows[name]), flush=True)

    run("plain", x, y, balanced=False)
    run("oversample", x, y, balanced=True)
    run("augment+oversample", x, y, balanced=True, augment=True)
    run("gan", np.concatenate([x, sx]), np.concatenate([y, sy]), balanced=False)
    keep_judge = conf >= 0.5
    run("gan+filter(judge)+oversample", np.concatenate([x, sx[keep_judge]]), np.concatenate([y, sy[keep_judge]]),
        balanced=True)
    keep_cnn = predict(nets["oversample"], sx) == sy
    run("gan+filter(cnn)+oversample", np.concatenate([x, sx[keep_cnn]]), np.concatenate([y, sy[keep_cnn]]),
        balanced=True)
    q = res.quality
    gan = GanConfig(classes=classes)  # the defaults `generate` trained with
    summary = {"train_counts": np.bincount(y, minlength=10).tolist(), "test_per_class": 200,
               "gan_steps": res.step, "gan": {"augment": list(gan.augment), "ac_weight": gan.ac_weight},
               "gan_seconds": round(gan_s, 1), "synthetic": len(sy),
               "gan_quality": {"fid": q.fid, "fidelity": q.fidelity, "fidelity_ceiling": q.fidelity_ceiling,
                               "cas": q.cas, "min_diversity": q.min_diversity,
                               "minority_fidelity": {c: q.per_class[c]["fidelity"] for c in classes[7:]}},
               "kept_by_filter": {"judge": np.bincount(sy[keep_judge], minlength=10).tolist(),
                                  "cnn": np.bincount(sy[keep_cnn], minlength=10).tolist(),
                                  "generated": np.bincount(sy, minlength=10).tolist()},
               "clf_steps": args.clf_steps, "threads": args.threads, "variants": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["gan_quality"]))


if __name__ == "__main__":
    main()
