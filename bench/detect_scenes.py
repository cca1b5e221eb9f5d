"""Boxes from 10% boxed images: Fashion-MNIST scenes, `pixlabel label --task detect`, mAP on the rest.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/detect_scenes.py --scenes 2000 --seed-fraction 0.1

Scenes: 128-px, 1-4 real Fashion-MNIST items each, tinted and pasted on procedural backgrounds
(pixlabel.detect.scenes). A random 10% of the images keep their true boxes as the seed COCO file; the rest
are labeled by the real command (subprocess, whole-process wall time), and its labels.coco.json is scored
against the hidden truth of those images with pycocotools (mAP@0.5, mAP@[.5:.95], per-class AP).
Target (issue 8): mAP@0.5 >= 0.70 within 20 minutes on 2 cores.
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

from pixlabel.datasets import fashion_mnist
from pixlabel.detect.metrics import detection_metrics
from pixlabel.detect.scenes import make_scenes
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.records import Dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=2000)
    ap.add_argument("--seed-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", default="detect", choices=["detect", "segment"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench-detect"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/detect_scenes.json"))
    ap.add_argument("extra", nargs="*", help="more `pixlabel label` flags after --, e.g. -- --rounds 1")
    args = ap.parse_args()

    root = args.work / f"scenes{args.scenes}"
    truth = make_scenes(fashion_mnist(), root / "images", args.scenes, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    n_seed = round(args.scenes * args.seed_fraction)
    seeds = {truth.images[i].path for i in rng.permutation(args.scenes)[:n_seed]}
    write_coco(Dataset([i for i in truth.images if i.path in seeds],
                       [lab for lab in truth.labels if lab.image in seeds], truth.ontology), root / "seed.coco.json")
    ws = args.work / f"ws{args.scenes}-{args.task}"
    flags = ["--detector-size", "128", *args.extra]
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "-q", "label", str(root / "images"), "--task", args.task,
           "--labels", str(root / "seed.coco.json"), "--out", str(ws), "--seed", str(args.seed), *flags]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pixlabel label failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(proc.stdout)
    predicted = read_coco(ws / "labels.coco.json")
    rest = [i.path for i in truth.images if i.path not in seeds]
    result = {"scenes": args.scenes, "seed_images": n_seed, "scored_images": len(rest),
              "truth_boxes": sum(lab.image not in seeds for lab in truth.labels),
              "command": " ".join(["pixlabel", *cmd[4:]]), "wall_seconds": round(wall, 1), "cpu_threads": 2}
    for iou_type in ["bbox"] + (["segm"] if args.task == "segment" else []):
        m = detection_metrics(truth, predicted, images=rest, iou_type=iou_type)
        result[iou_type] = {"map50": m["map50"], "map": m["map"], "map75": m["map75"],
                            "per_class_ap50": {c: v["ap50"] for c, v in m["per_class"].items()}}
    result["summary"] = proc.stdout.strip().splitlines()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("wall_seconds", "bbox")}, indent=1))


if __name__ == "__main__":
    main()
