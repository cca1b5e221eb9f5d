"""``pixlabel demo``: label a real dataset from 10 labels per class and grade the result against the truth."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from pixlabel.datasets import default_dataset, pick_seeds, subsample, write_image_folder
from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.label import LabelRun, run_label
from pixlabel.pipeline.report import write_run_report
from pixlabel.trust.calibrate import expected_calibration_error


def grade(run: LabelRun, truth: dict[str, str]) -> dict[str, float]:
    """Accuracy of model labels vs hidden truth, precision/coverage of the accepted ones, ECE on truth."""
    seeds = set(run.seeds)
    rows = [i for i, p in enumerate(run.paths) if p not in seeds]
    pred = np.array([run.classes[run.predicted[i]] for i in rows])
    gold = np.array([truth[run.paths[i]] for i in rows])
    correct = pred == gold
    acc = run.accepted[rows]
    return {
        "accuracy": float(correct.mean()),
        "accepted_precision": float(correct[acc].mean()) if acc.any() else float("nan"),
        "accepted_coverage": float(acc.mean()),
        "ece": expected_calibration_error(run.confidence[rows], correct),
        "unlabeled_images": float(len(rows)),
    }


def run_demo(*, out: Path, n: int | None, per_class: int, seed: int, method: str = "auto",
             image_size: int = 96) -> tuple[LabelRun, dict[str, float]]:
    ds = subsample(default_dataset(), n, seed=seed)
    data_dir = out / "data"
    paths = write_image_folder(ds, data_dir)
    truth = {p: ds.classes[k] for p, k in zip(paths, ds.labels, strict=True)}
    seed_idx = pick_seeds(ds.labels, per_class=per_class, seed=seed)
    seed_csv = data_dir / "seeds.csv"
    with seed_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows((paths[i], truth[paths[i]]) for i in seed_idx)
    t0 = time.perf_counter()
    run = run_label(LabelConfig(images=str(data_dir / "images"), labels=str(seed_csv), out=str(out / "workspace"),
                                method=method, seed=seed, image_size=image_size))
    scores = grade(run, truth)
    scores["seconds"] = time.perf_counter() - t0
    write_run_report(run, truth=scores)  # the report now shows the graded numbers too
    return run, scores
