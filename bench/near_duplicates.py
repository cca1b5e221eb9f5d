"""Where should the near-duplicate cosine threshold sit? (issue 16, part 4)

On real images that no one drew here, make near copies of 200 of them the way files get copied in the wild
(JPEG re-encode at quality 75, resize to half, crop 4% off each side, brightness +10%) and embed everything with
the run's backbone. For every threshold it reports

- recall: the share of copies whose cosine to their original is >= t, per kind of edit;
- false pairs: the share of (content-unique) originals whose nearest *other* image is >= t. Exact duplicates are
  excluded; what remains above a high threshold is listed so it can be looked at (some are real near copies).

and the recall of the run's candidate search (PCA-64 + faiss kNN, then full cosine) against brute force.

    flock /tmp/cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/near_duplicates.py
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from pixlabel.backbones import create_backbone
from pixlabel.backbones.embed import embed_files
from pixlabel.datasets import fashion_mnist, subsample, write_image_folder
from pixlabel.io.images import load_rgb
from pixlabel.io.ingest import ingest
from pixlabel.pipeline.duplicates import near_pairs, unique_rows

CLIPART = Path("/usr/share/openclipart/png")  # Debian openclipart-png: real artwork in category folders
THRESHOLDS = [0.80, 0.85, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995]
EDITS = ("jpeg75", "half", "crop4", "bright10")


def _edit(im: Image.Image, kind: str) -> tuple[Image.Image, str]:
    w, h = im.size
    if kind == "jpeg75":
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=75)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), ".jpg"
    if kind == "half":
        return im.resize((max(8, w // 2), max(8, h // 2)), Image.Resampling.LANCZOS), ".png"
    if kind == "crop4":
        dx, dy = max(1, round(w * 0.04)), max(1, round(h * 0.04))
        return im.crop((dx, dy, w - dx, h - dy)), ".png"
    return ImageEnhance.Brightness(im).enhance(1.1), ".png"


def _clipart_folder(root: Path, n: int, seed: int) -> Path:
    files = sorted(CLIPART.rglob("*.png"))
    pick = np.random.default_rng(seed).choice(len(files), min(n, len(files)), replace=False)
    out = root / "images"
    out.mkdir(parents=True, exist_ok=True)
    for i in pick:
        rel = files[i].relative_to(CLIPART)
        dest = out / str(rel).replace("/", "__")
        if not dest.exists():
            dest.write_bytes(files[i].read_bytes())
    return out


def _make_copies(images: Path, copies: Path, n: int, seed: int, max_pixels: int = 50_000_000
                 ) -> list[tuple[str, str, str]]:
    """(original path, copy path, edit) for ``n`` random originals x every edit; copies go under ``copies``."""
    files = sorted(p for p in images.iterdir() if p.is_file())
    pick = np.random.default_rng(seed).choice(len(files), min(n, len(files)), replace=False)
    copies.mkdir(parents=True, exist_ok=True)
    out = []
    for i in pick:
        try:
            im = load_rgb(files[i], max_pixels=max_pixels)
        except Exception:  # noqa: BLE001  an unreadable original just gets no copies
            continue
        for kind in EDITS:
            edited, ext = _edit(im, kind)
            name = f"{files[i].stem}__{kind}{ext}"
            if not (copies / name).exists():
                edited.save(copies / name)
            out.append((files[i].name, name, kind))
    return out


def _measure(name: str, images: Path, copies: Path, pairs: list[tuple[str, str, str]], image_size: int,
             cache: Path) -> dict:
    backbone = create_backbone(image_size=image_size)
    t0 = time.perf_counter()
    orig = embed_files(ingest(images, decode=False).images, backbone, cache_dir=cache)
    cop = embed_files(ingest(copies, decode=False).images, backbone, cache_dir=cache)
    embed_s = time.perf_counter() - t0

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    reps, _ = unique_rows([f.content_hash for f in orig.files])  # exact duplicates are not near-duplicates
    o_paths = [orig.files[r].path for r in reps]
    o = unit(orig.embeddings[reps].astype(np.float64))
    c = unit(cop.embeddings.astype(np.float64))
    o_row, c_row = {p: i for i, p in enumerate(o_paths)}, {f.path: i for i, f in enumerate(cop.files)}
    pos = {k: [] for k in EDITS}
    for src, dst, kind in pairs:
        if src in o_row and dst in c_row:
            pos[kind].append(float(o[o_row[src]] @ c[c_row[dst]]))
    o32 = o.astype(np.float32)
    nearest, partner, brute = np.empty(len(o)), np.empty(len(o), np.int64), set()
    for start in range(0, len(o), 2048):  # (chunk, M) at a time: 10k x 10k would be 800 MB at once
        sim = o32[start:start + 2048] @ o32.T
        sim[np.arange(len(sim)), np.arange(start, start + len(sim))] = -1.0  # not itself
        nearest[start:start + len(sim)], partner[start:start + len(sim)] = sim.max(axis=1), sim.argmax(axis=1)
        rows, cols = np.nonzero(sim >= 0.95)
        brute |= {(int(min(r + start, c)), int(max(r + start, c))) for r, c in zip(rows, cols, strict=True)}
    top = np.argsort(-nearest)[:12]
    t0 = time.perf_counter()
    found_pairs = near_pairs(o32, threshold=0.95)
    search_s = time.perf_counter() - t0
    found = {(int(a), int(b)) for a, b in found_pairs}
    same_groups = _groups(np.array(sorted(brute)).reshape(-1, 2), len(o)) == _groups(found_pairs, len(o))
    return {
        "dataset": name, "image_size": image_size, "originals": len(o), "copies": len(cop.files),
        "embed_seconds": round(embed_s, 1),
        "recall": {f"{t:g}": {k: float(np.mean(np.array(v) >= t)) for k, v in pos.items() if v} for t in THRESHOLDS},
        "recall_all_edits": {f"{t:g}": float(np.mean(np.concatenate([v for v in pos.values()]) >= t))
                             for t in THRESHOLDS},
        "false_pair_rate": {f"{t:g}": float(np.mean(nearest >= t)) for t in THRESHOLDS},
        "copy_cosine_quantiles": {k: np.quantile(v, [0.01, 0.05, 0.5]).round(4).tolist() for k, v in pos.items() if v},
        "nearest_other_quantiles": np.quantile(nearest, [0.5, 0.9, 0.99, 0.999]).round(4).tolist(),
        "closest_distinct_pairs": [[o_paths[i], o_paths[partner[i]], round(float(nearest[i]), 4)] for i in top],
        "candidate_search_recall_at_0.95": (len(found & brute) / len(brute)) if brute else None,
        "candidate_search_same_groups_at_0.95": bool(same_groups),
        "candidate_search_seconds": round(search_s, 2),
        "brute_pairs_at_0.95": len(brute),
    }


def _groups(pairs: np.ndarray, n: int) -> list[list[int]]:
    """Connected components of size >= 2: what the run reports as near-duplicate groups."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(pairs):
        return []
    _, comp = connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)))
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(comp.tolist()):
        groups.setdefault(c, []).append(i)
    return sorted(g for g in groups.values() if len(g) > 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-neardup"))
    ap.add_argument("--clipart", type=int, default=1500, help="openclipart files sampled")
    ap.add_argument("--fmnist", type=int, default=10000, help="Fashion-MNIST images sampled")
    ap.add_argument("--originals", type=int, default=200, help="images that get edited copies")
    ap.add_argument("--out", type=Path, default=Path("bench/out/near_duplicates.json"))
    args = ap.parse_args()
    cache = args.work / "cache"
    results = []
    fm = subsample(fashion_mnist(), args.fmnist, seed=0)
    write_image_folder(fm, args.work / "fmnist")
    fm_images = args.work / "fmnist" / "images"
    fm_pairs = _make_copies(fm_images, args.work / "fmnist-copies", args.originals, 0)
    results.append(_measure("fashion-mnist", fm_images, args.work / "fmnist-copies", fm_pairs, 96, cache))
    clip_images = _clipart_folder(args.work / "clipart", args.clipart, 0)
    clip_pairs = _make_copies(clip_images, args.work / "clipart-copies", args.originals, 0)
    for size in (96, 224):
        results.append(_measure("openclipart", clip_images, args.work / "clipart-copies", clip_pairs, size, cache))
    for r in results:
        print(r["dataset"], r["image_size"], "false", r["false_pair_rate"], "recall", r["recall_all_edits"],
              "cand", r["candidate_search_recall_at_0.95"], r["candidate_search_same_groups_at_0.95"], flush=True)
    ok = [t for t in THRESHOLDS if all(r["false_pair_rate"][f"{t:g}"] <= 0.001 for r in results)]
    out = {"results": results, "thresholds": THRESHOLDS,
           "lowest_threshold_with_false_pair_rate_le_0.001": min(ok) if ok else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"lowest_threshold_with_false_pair_rate_le_0.001": out[
        "lowest_threshold_with_false_pair_rate_le_0.001"]}))


if __name__ == "__main__":
    main()
