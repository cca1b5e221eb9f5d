"""The labeling suite: pixlabel's labeler against the baselines a user would otherwise run, on several real
folders (grey and colour, 8 px to 6,000 px, balanced and imbalanced, fine and broad classes), at 1 / 5 / 10
labels per class and 3 seed draws each.

    .venv/bin/python bench/suite.py                        # every set, 1 5 10 labels/class, seeds 0 1 2
    .venv/bin/python bench/suite.py --sets icons --per-class 5 --seeds 0 --image-size 224

Every cell runs, in the same process and on the same embeddings: pixlabel's ``decide`` (what ``pixlabel label``
runs after embedding), a logistic regression on the seeds, kNN on the seeds and sklearn's LabelSpreading. It
also fits every auto candidate on all seeds and scores it on the pool, so the JSON shows how well the
cross-validation on the seeds ranks the candidates (``cv_regret``: pool accuracy of the best candidate minus
that of the one CV chose). Accuracy is on the unlabeled images; ``ece`` is against the truth;
``flagged_correct`` is the share of (all correct) seeds flagged as likely wrong.
Writes bench/out/suite.json (or --out) and prints the markdown table for docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize
from sklearn.semi_supervised import LabelSpreading

sys.path.insert(0, str(Path(__file__).parent))
from suite_data import ALL_SETS, SuiteSet, load  # noqa: E402

from pixlabel.backbones import create_backbone  # noqa: E402
from pixlabel.backbones.embed import embed_files  # noqa: E402
from pixlabel.io.images import ImageFile, content_hash  # noqa: E402
from pixlabel.labelers.protocol import Pool  # noqa: E402
from pixlabel.pipeline.decide import decide  # noqa: E402
from pixlabel.trust.calibrate import expected_calibration_error  # noqa: E402


def pick_seeds(labels: np.ndarray, *, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` random rows of every class (one fewer where a class is that small: one stays unlabeled)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        out.append(rng.choice(rows, min(per_class, len(rows) - 1), replace=False))
    return np.sort(np.concatenate(out))


def baselines(x: np.ndarray, labeled: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """(N,) predictions of what a user would otherwise run on the same features, with sklearn's defaults
    (features L2-normalised, as for any embedding)."""
    xn = normalize(x)
    lr = LogisticRegression(max_iter=2000).fit(xn[labeled], y)
    knn = KNeighborsClassifier(n_neighbors=min(5, len(labeled)), weights="distance").fit(xn[labeled], y)
    target = np.full(len(x), -1)
    target[labeled] = y
    ls = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(xn, target)
    return {"logreg": lr.predict(xn), "knn": knn.predict(xn), "labelspreading": ls.transduction_}


def embed_set(s: SuiteSet, image_size: int | None, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(embeddings, thumbs, truth) in the order of the files that decoded, and the embedding seconds."""
    files = []
    for p in s.paths:
        a = s.root / p
        files.append(ImageFile(p, a, a.stat().st_size, content_hash(a)))
    backbone = create_backbone(image_size=image_size)
    t = time.perf_counter()
    emb = embed_files(files, backbone, cache_dir=cache)
    truth = s.truth()
    y = np.array([truth[f.path] for f in emb.files], np.int64)
    if emb.errors:
        print(f"{s.name}: {len(emb.errors)} files failed: {emb.errors[:3]}", flush=True)
    return emb.embeddings, emb.thumbs, y, time.perf_counter() - t


def run_cell(s: SuiteSet, pool: Pool, y_all: np.ndarray, *, per_class: int, seed: int, method: str) -> dict:
    k = len(s.classes)
    labeled = pick_seeds(y_all, per_class=per_class, seed=seed)
    unl = np.ones(len(y_all), bool)
    unl[labeled] = False
    t = time.perf_counter()
    d = decide(Pool(pool.embeddings, pool.thumbs, seed), labeled, y_all[labeled], n_classes=k, method=method,
               seed=seed)
    label_s = time.perf_counter() - t
    correct = d.probs.argmax(1) == y_all
    acc = (d.confidence >= d.threshold.threshold) & unl
    base = {n: float((p == y_all)[unl].mean()) for n, p in baselines(pool.embeddings, labeled, y_all[labeled],
                                                                        k).items()}
    # how well CV on the seeds ranked the candidates: refit each on all seeds, score on the pool
    pool_acc = {}
    for name in d.cv:
        if name == d.method:
            pool_acc[name] = float(correct[unl].mean())
        elif name in d.fitted:
            pool_acc[name] = float((d.fitted[name].argmax(1) == y_all)[unl].mean())
    best = max(pool_acc.values()) if pool_acc else float("nan")
    return {
        "set": s.name, "per_class": per_class, "seed": seed, "method": d.method, "n_pool": int(unl.sum()),
        "accuracy": float(correct[unl].mean()),
        **{f"{n}_accuracy": v for n, v in base.items()},
        "best_baseline": max(base.values()),
        "accepted_precision": float(correct[acc].mean()) if acc.any() else None,
        "accepted_coverage": float(acc.sum() / unl.sum()),
        "threshold_met": bool(d.threshold.met),
        "ece": float(expected_calibration_error(d.confidence[unl], correct[unl])),
        "mean_confidence": float(d.confidence[unl].mean()),
        "flagged_correct": float(len(d.flagged_seeds) / len(labeled)),
        "cv": {n: (None if np.isnan(r.accuracy) else r.accuracy) for n, r in d.cv.items()},
        "pool_accuracy_by_candidate": pool_acc,
        "cv_regret": best - pool_acc.get(d.method, best),
        "label_seconds": round(label_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", default=list(ALL_SETS))
    ap.add_argument("--per-class", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--image-size", default="auto", help="'auto' (pixlabel's default rule) or pixels")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-suite"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/suite.json"))
    ap.add_argument("--table", type=Path, help="only print the tables of an earlier run's JSON")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return

    rows, sets_info = [], {}
    for name in args.sets:
        s = load(name, args.work)
        size = None if args.image_size == "auto" else int(args.image_size)
        if size is None:
            from pixlabel.backbones.sizing import choose_image_size

            size = choose_image_size([s.root / p for p in s.paths]).size
        x, thumbs, y, embed_s = embed_set(s, size, args.work / "cache")
        sets_info[name] = {"images": len(y), "classes": list(s.classes), "counts": np.bincount(y).tolist(),
                           "image_size": size, "embed_seconds": round(embed_s, 1), **s.traits}
        print(f"== {name}: {len(y)} images, {len(s.classes)} classes, image size {size}, embed {embed_s:.0f} s",
              flush=True)
        pool = Pool(x, thumbs, 0)
        for per_class in args.per_class:
            for seed in args.seeds:
                row = run_cell(s, pool, y, per_class=per_class, seed=seed, method=args.method)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("cv", "pool_accuracy_by_candidate")}),
                      flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"method": args.method, "image_size": args.image_size, "sets": sets_info, "runs": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))


def table(result: dict) -> str:
    """Mean over seeds per (set, labels/class)."""
    lines = ["| set | labels/class | pixlabel | logreg | kNN | LabelSpreading | pixlabel − best baseline | "
             "accepted precision | coverage | ECE | correct seeds flagged | CV regret |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in result["runs"]:
        groups.setdefault((r["set"], r["per_class"]), []).append(r)
    for (name, pc), rs in groups.items():
        def m(key: str, rs: list[dict] = rs) -> float:
            return float(np.mean([r[key] for r in rs]))
        precs = [r["accepted_precision"] for r in rs if r["accepted_precision"] is not None]
        prec = f"{np.mean(precs):.1%} ({len(precs)}/{len(rs)})" if precs else "none accepted"
        lines.append(f"| {name} | {pc} | {m('accuracy'):.1%} | {m('logreg_accuracy'):.1%} | {m('knn_accuracy'):.1%} "
                     f"| {m('labelspreading_accuracy'):.1%} | {m('accuracy') - m('best_baseline'):+.1%} | {prec} "
                     f"| {m('accepted_coverage'):.1%} | {m('ece'):.1%} | {m('flagged_correct'):.1%} "
                     f"| {m('cv_regret'):.1%} |")
    scored = [r for r in result["runs"] if len(r["pool_accuracy_by_candidate"]) > 1 and any(
        v is not None for v in r["cv"].values())]
    if scored:
        hit = np.mean([r["cv_regret"] <= 1e-9 for r in scored])
        regret = [r["cv_regret"] for r in scored]
        lines.append(f"\nCV on the seeds chose the candidate that was best on the pool in {hit:.0%} of the "
                     f"{len(scored)} cells with held-out seeds; mean regret {np.mean(regret):.1%} "
                     f"(max {np.max(regret):.1%}).")
    accepting = [r for r in result["runs"] if r["accepted_precision"] is not None]
    if accepting:
        ok = np.mean([r["accepted_precision"] >= 0.97 for r in accepting])
        lines.append(f"Runs that auto-accepted anything: {len(accepting)} of {len(result['runs'])}; accepted "
                     f"precision >= 97% in {ok:.0%} of them.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
