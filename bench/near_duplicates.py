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


SAME_PICTURE = 2.0  # mean |difference| of 16x16 grey thumbnails (0-255) at or below which two files are one picture


def _small(thumbs: np.ndarray) -> np.ndarray:
    """(M, 256) float32 grey 16x16 versions of (M, t, t, 3) uint8 thumbnails."""
    return np.stack([np.asarray(Image.fromarray(t).convert("L").resize((16, 16), Image.Resampling.BILINEAR),
                                dtype=np.float32).reshape(-1) for t in thumbs])


def _nearest_other_picture(o: np.ndarray, small: np.ndarray, *, top: int = 32) -> tuple[np.ndarray, np.ndarray,
                                                                                         int]:
    """For each row its highest cosine to a row that is a *different picture* (thumbnails differ), the partner,
    and how many rows had a same-picture partner (blank renders, re-saved files: duplicates by any measure)."""
    nearest, partner, same = np.full(len(o), -1.0), np.zeros(len(o), np.int64), 0
    for start in range(0, len(o), 1024):
        sim = o[start:start + 1024] @ o.T  # (chunk, M)
        sim[np.arange(len(sim)), np.arange(start, start + len(sim))] = -np.inf
        cand = np.argsort(-sim, axis=1)[:, :top]  # (chunk, top)
        for r, cols in enumerate(cand):
            diff = np.abs(small[cols] - small[start + r]).mean(axis=1)
            same += bool((diff <= SAME_PICTURE).any())
            other = cols[diff > SAME_PICTURE]
            if len(other):
                nearest[start + r], partner[start + r] = sim[r, other[0]], other[0]
    return nearest, partner, same


def _scores(o: np.ndarray, c: np.ndarray, pairs: list[tuple[int, int, str]], small: np.ndarray,
            paths: list[str]) -> dict:
    pos: dict[str, list[float]] = {k: [] for k in EDITS}
    for i, j, kind in pairs:
        pos[kind].append(float(o[i] @ c[j]))
    nearest, partner, same = _nearest_other_picture(o.astype(np.float32), small)
    top = np.argsort(-nearest)[:10]
    every = np.concatenate([v for v in pos.values() if v])
    return {
        "recall": {f"{t:g}": {k: float(np.mean(np.array(v) >= t)) for k, v in pos.items() if v} for t in THRESHOLDS},
        "recall_all_edits": {f"{t:g}": float(np.mean(every >= t)) for t in THRESHOLDS},
        "false_pair_rate": {f"{t:g}": float(np.mean(nearest >= t)) for t in THRESHOLDS},
        "copy_cosine_quantiles": {k: np.quantile(v, [0.01, 0.05, 0.5]).round(4).tolist() for k, v in pos.items() if v},
        "nearest_other_picture_quantiles": np.quantile(nearest, [0.5, 0.9, 0.99, 0.999]).round(4).tolist(),
        "rows_with_a_same_picture_file": same,
        "closest_different_pictures": [[paths[i], paths[partner[i]], round(float(nearest[i]), 4)] for i in top],
    }


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
    o_row, c_row = {p: i for i, p in enumerate(o_paths)}, {f.path: i for i, f in enumerate(cop.files)}
    index = [(o_row[a], c_row[b], k) for a, b, k in pairs if a in o_row and b in c_row]
    small = _small(orig.thumbs[reps])
    raw_o, raw_c = orig.embeddings[reps].astype(np.float64), cop.embeddings.astype(np.float64)
    mean = raw_o.mean(axis=0)  # the pool's mean embedding: what the run subtracts when centering
    variants = {"raw": _scores(unit(raw_o), unit(raw_c), index, small, o_paths),
                "centered": _scores(unit(raw_o - mean), unit(raw_c - mean), index, small, o_paths)}
    o32 = unit(raw_o - mean).astype(np.float32)
    brute = np.argwhere(np.triu(o32 @ o32.T >= 0.95, 1)) if len(o32) <= 12_000 else np.zeros((0, 2), np.int64)
    t0 = time.perf_counter()
    found_pairs = near_pairs(raw_o.astype(np.float32), threshold=0.95)  # centres and normalises itself
    search_s = time.perf_counter() - t0
    found = {(int(a), int(b)) for a, b in found_pairs}
    return {
        "dataset": name, "image_size": image_size, "originals": len(reps), "copies": len(cop.files),
        "embed_seconds": round(embed_s, 1), **variants,
        "candidate_search_pair_recall_at_0.95": (len(found & {tuple(map(int, p)) for p in brute}) / len(brute))
        if len(brute) else None,
        "candidate_search_same_groups_at_0.95": _groups(brute, len(o32)) == _groups(found_pairs, len(o32)),
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
        for v in ("raw", "centered"):
            print(r["dataset"], r["image_size"], v, "false", r[v]["false_pair_rate"], "recall",
                  r[v]["recall_all_edits"], flush=True)
        print("  candidates", r["candidate_search_pair_recall_at_0.95"], r["candidate_search_same_groups_at_0.95"])
    chosen = {}
    for v in ("raw", "centered"):
        ok = [t for t in THRESHOLDS if all(r[v]["false_pair_rate"][f"{t:g}"] <= 0.001 for r in results)]
        chosen[v] = min(ok) if ok else None
    out = {"results": results, "thresholds": THRESHOLDS, "same_picture_thumbnail_diff": SAME_PICTURE,
           "lowest_threshold_with_false_pair_rate_le_0.001": chosen}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(chosen))


if __name__ == "__main__":
    main()
