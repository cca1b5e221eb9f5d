"""Scale-out numbers for docs/scaling.md: embedding throughput local vs Ray on this box, and the cost of the
part that stays on one node (PCA + kNN graph + Poisson solve) at 10k and 70k images.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/engine_scale.py

1. Embeds --engine-n Fashion-MNIST PNGs (tf_efficientnet_lite0, 96 px, cache off) with the local engine
   and with ``--engine ray`` (a fresh local Ray, 2 CPUs, one actor per CPU). Each Ray run starts its actor
   pool; that start-up is reported separately (a 64-image run).
2. Embeds all 70k images from the in-memory arrays at --store-size px (default 32: the graph stage's cost
   depends on N and D = 1280 only, not on the image size, so the cheap size is representative).
3. For N in --sizes, in a fresh subprocess each (so peak RSS is that stage's alone): PCA-64 + faiss kNN
   (k=10) graph, then Poisson learning with 10 seeds per class; wall time of each and peak RSS.
Writes bench/out/engine_scale.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

STAGE = r"""
import json, resource, sys, time
import numpy as np
from pixlabel.datasets import pick_seeds
from pixlabel.labelers.graph import pool_graph
from pixlabel.labelers.poisson import PoissonLabeler
from pixlabel.labelers.protocol import Pool
d = np.load(sys.argv[1]); n = int(sys.argv[2])
x, y = d["emb"][:n].astype(np.float32), d["y"][:n]
pool_graph(x[:500].copy(), dim=64, k=10, seed=0)  # warm-up: imports (faiss, graphlearning) are not the graph's cost
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); feats, W = pool_graph(x, dim=64, k=10, seed=0); t_graph = time.perf_counter() - t0
seeds = pick_seeds(y, per_class=10, seed=0)
t0 = time.perf_counter()
lab = PoissonLabeler().fit(Pool(x, None, 0), seeds, y[seeds], n_classes=10)
t_solve = time.perf_counter() - t0
acc = float((lab.probs_.argmax(1) == y).mean())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "graph_s": t_graph, "solve_s": t_solve, "accuracy": acc, "edges": int(W.nnz),
                  "input_mb": x.nbytes / 1e6, "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024}))
"""


def embed_store(n: int, image_size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Embeddings of the first ``n`` Fashion-MNIST images straight from the arrays (no PNG round trip)."""
    from pixlabel.backbones import create_backbone
    from pixlabel.backbones.embed import Embedder, ModelStreams
    from pixlabel.datasets import fashion_mnist

    ds = fashion_mnist()
    backbone = create_backbone(image_size=image_size)
    gray = torch.nn.functional.interpolate(torch.from_numpy(ds.images[:n]).float()[:, None],
                                           size=(image_size, image_size), mode="bilinear")
    rgb = gray.clamp(0, 255).round().to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()  # (n,S,S,3)
    t0 = time.perf_counter()
    with ModelStreams(Embedder(backbone)) as streams:
        emb = np.concatenate(list(streams.map([rgb[i:i + 256] for i in range(0, n, 256)])))
    return emb, ds.labels[:n], time.perf_counter() - t0


def engines(work: Path, n: int, image_size: int) -> dict[str, Any]:
    """Local vs Ray ``embed`` of the same ``n`` PNG files (full pipeline: decode + model), cache off."""
    from pixlabel.backbones import create_backbone
    from pixlabel.datasets import fashion_mnist, subsample, write_image_folder
    from pixlabel.engines import get_engine
    from pixlabel.engines.ray_engine import ensure_ray
    from pixlabel.io.ingest import ingest

    write_image_folder(subsample(fashion_mnist(), n, seed=0), work)
    files = ingest(work / "images", decode=False).images
    backbone = create_backbone(image_size=image_size)
    info: dict[str, Any] = {"n": len(files), "image_size": image_size}
    t0 = time.perf_counter()
    ensure_ray(None, num_cpus=os.cpu_count())
    info["ray_init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    get_engine("ray").embed(files[:64], backbone)
    info["ray_64_images_s"] = time.perf_counter() - t0  # ≈ actor start-up + one batch
    for name in ("local", "ray"):
        t0 = time.perf_counter()
        r = get_engine(name).embed(files, backbone)
        dt = time.perf_counter() - t0
        info[f"{name}_s"] = dt
        info[f"{name}_img_per_s"] = len(r.files) / dt
        print(f"{name}: {len(r.files)} images in {dt:.1f} s ({len(r.files) / dt:.0f} img/s)", flush=True)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench-scale"))
    ap.add_argument("--engine-n", type=int, default=2000, help="images for the local vs Ray comparison")
    ap.add_argument("--store-size", type=int, default=32,
                    help="image size of the 70k embeddings for the graph stage (cost depends on N and D only)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 70000])
    ap.add_argument("--out", type=Path, default=Path("bench/out/engine_scale.json"))
    ap.add_argument("--phase", choices=("all", "engines", "store", "graph"), default="all",
                    help="run one phase only (results merge into --out), to keep each run short on a shared box")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update({"cpu_count": os.cpu_count()})
    store = args.work / "emb.npz"
    if args.phase in ("all", "engines"):
        result["engines"] = engines(args.work, args.engine_n, 96)
    if args.phase in ("all", "store"):
        emb, y, dt = embed_store(max(args.sizes), args.store_size)
        result["store"] = {"n": len(emb), "image_size": args.store_size, "embed_s": dt, "img_per_s": len(emb) / dt,
                           "dim": int(emb.shape[1])}
        np.savez(store, emb=emb, y=y)
    rows = result.get("graph", [])
    if args.phase in ("all", "graph"):
        for n in args.sizes:
            out = subprocess.run([sys.executable, "-c", STAGE, str(store), str(n)], check=True,
                                 capture_output=True, text=True)
            rows = [r for r in rows if r["n"] != n] + [json.loads(out.stdout.strip().splitlines()[-1])]
            print(rows[-1], flush=True)
        result["graph"] = sorted(rows, key=lambda r: r["n"])
    result["load_avg_1min"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "graph"}, indent=1))
    print("\n| N | PCA+kNN graph s | Poisson solve s | peak RSS MB | accuracy (10 seeds/class) |")
    print("|---|---|---|---|---|")
    for r in result.get("graph", []):
        print(f"| {r['n']} | {r['graph_s']:.1f} | {r['solve_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['accuracy']:.1%} |")


if __name__ == "__main__":
    main()
