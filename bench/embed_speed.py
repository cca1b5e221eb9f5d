"""Embedding speed: the plain PyTorch loop vs ``embed_files``, same images, same model, same process.

    .venv/bin/python bench/embed_speed.py --n 2000 --sizes 96 128

(a) plain: PIL open + convert RGB + resize to S, torchvision to_tensor/normalize, fp32 eager PyTorch,
    batch 64, torch's default threads.
(b) ours: ``embed_files`` with the cache off — the whole pipeline, decoding included.
Both start from the same list of PNG files (Fashion-MNIST test images, 28x28, written with PIL to a temp
folder) and get one warm-up batch first, so neither pays oneDNN's first-call setup in its timing. Runs of
(a) and (b) alternate --repeats times and the medians are reported, so load from other processes on a
shared machine hits both alike. The cosine between (a) and (b) per image checks that speed did not cost
the embedding.
Writes bench/out/embed_speed.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from pixlabel.backbones import DEFAULT_BACKBONE, Backbone, create_backbone
from pixlabel.backbones.embed import bf16_is_fast, embed_files
from pixlabel.io.images import ImageFile
from pixlabel.io.ingest import ingest
from pixlabel.progress import set_enabled

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_images(n: int) -> tuple[np.ndarray, str]:
    """(n, 28, 28) uint8 and where they came from; random blobs when the dataset package is missing."""
    if FASHION.is_file():
        with gzip.open(FASHION) as fh:
            raw = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
        reps = -(-n // len(raw))
        return np.concatenate([raw] * reps)[:n], f"Fashion-MNIST test set ({FASHION})"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), "random noise (Fashion-MNIST not installed)"


def write_pngs(images: np.ndarray, root: Path) -> list[ImageFile]:
    for i, img in enumerate(images):
        # a tiny per-file marker keeps every file's bytes distinct when the set repeats (n > 10000), so the
        # pipeline's de-duplication never skips work the plain loop does
        img = img.copy()
        img[0, 0] = i % 256
        img[0, 1] = (i // 256) % 256
        Image.fromarray(img).save(root / f"{i:06d}.png")
    return ingest(root, decode=False).images


def plain_loop(files: list[ImageFile], backbone: Backbone, batch: int) -> np.ndarray:
    """What a user writes without pixlabel: sequential PIL decode, torchvision ``to_tensor`` + ``normalize``,
    ``torch.stack``, the fp32 model in eager mode under ``no_grad``. No tricks."""
    size = backbone.image_size
    model = backbone.module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(files), batch):
            tensors = []
            for f in files[start:start + batch]:
                with Image.open(f.abs_path) as im:
                    img = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                tensors.append(TF.normalize(TF.to_tensor(img), list(backbone.mean), list(backbone.std)))
            out.append(model(torch.stack(tensors)).numpy())
    return np.concatenate(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[96, 128], help="input sizes S (default 96 128)")
    ap.add_argument("--batch", type=int, default=64, help="batch size of the plain loop (default 64)")
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each path; medians are reported")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for both paths (default: torch's default, one per core); 1 gives a "
                    "per-core comparison that other processes on the machine disturb far less")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "embed_speed.json")
    args = ap.parse_args()
    set_enabled(False)  # no progress bar redraws inside the timed region
    if args.threads:
        torch.set_num_threads(args.threads)

    images, source = fashion_images(args.n)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pixlabel-embed-speed-") as tmp:
        files = write_pngs(images, Path(tmp))
        for size in args.sizes:
            # separate Backbone objects: embed_files may re-layout its module, the plain loop must not see it
            plain_bb = create_backbone(args.backbone, image_size=size)
            ours_bb = create_backbone(args.backbone, image_size=size)
            plain_loop(files[: args.batch], plain_bb, args.batch)  # warm-up
            embed_files(files[: args.batch], ours_bb)
            plain_runs, ours_runs = [], []
            for _ in range(args.repeats):  # alternate, so a burst of load elsewhere hits both paths alike
                t = time.perf_counter()
                a = plain_loop(files, plain_bb, args.batch)
                plain_runs.append(time.perf_counter() - t)
                t = time.perf_counter()
                result = embed_files(files, ours_bb)
                ours_runs.append(time.perf_counter() - t)
                if len(result.files) != len(files) or result.errors:
                    raise SystemExit(f"embed_files dropped images: {result.errors[:3]}")
            plain_s, ours_s = statistics.median(plain_runs), statistics.median(ours_runs)
            cos = cosine(a, result.embeddings)
            rows.append({
                "image_size": size,
                "plain_img_per_s": round(len(files) / plain_s, 1),
                "ours_img_per_s": round(len(files) / ours_s, 1),
                "speedup": round(plain_s / ours_s, 2),
                "speedup_best_runs": round(min(plain_runs) / min(ours_runs), 2),
                "cosine_mean": round(float(cos.mean()), 5),
                "cosine_min": round(float(cos.min()), 5),
                "plain_runs_s": [round(x, 2) for x in plain_runs],
                "ours_runs_s": [round(x, 2) for x in ours_runs],
            })
    report = {
        "backbone": args.backbone,
        "n_images": len(images),
        "images": source,
        "plain": f"PIL decode+resize sequential, torchvision to_tensor, fp32 eager, batch {args.batch}, "
        f"torch threads {torch.get_num_threads()}",
        "ours": "embed_files defaults (cache off)",
        "repeats": args.repeats,
        "bf16_is_fast": bf16_is_fast(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_avg_1min_before": round(load_before[0], 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.backbone}, {len(images)} images ({source}); load avg {report['load_avg_1min_before']} -> "
          f"{report['load_avg_1min_after']}; bf16_is_fast={report['bf16_is_fast']}\n")
    print("| S | plain img/s | embed_files img/s | speed-up (medians) | speed-up (best runs) | cosine mean "
          "| cosine min |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['image_size']} | {r['plain_img_per_s']} | {r['ours_img_per_s']} | {r['speedup']}x | "
              f"{r['speedup_best_runs']}x | {r['cosine_mean']} | {r['cosine_min']} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
