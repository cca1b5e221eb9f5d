"""Closing the loop: label Fashion-MNIST, correct the 200 least-confident labels through the review API,
label again on the same workspace, and compare accuracy before and after.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/review_loop.py --size 10000 --per-class 10

Every step is the real command: `pixlabel label` (subprocess), `pixlabel review` (subprocess, uvicorn on
127.0.0.1) and HTTP calls a reviewer's browser would make. The simulated reviewer sets each of the 200 images
to its true class (confirming the right ones, fixing the wrong ones).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pixlabel.datasets import fashion_mnist, pick_seeds, subsample, write_image_folder

TOKEN = "bench:loop-secret"


def pixlabel(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pixlabel.cli.main", *args], text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)  # type: ignore[call-overload]


def label(images: Path, seeds: Path, ws: Path, method: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = pixlabel("-q", "label", str(images), "--labels", str(seeds), "--out", str(ws), "--method", method,
                    stdout=subprocess.PIPE)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"pixlabel label failed ({proc.returncode}):\n{out}")
    print(out, file=sys.stderr)
    return time.perf_counter() - t0, out


def grade(labels_csv: Path, truth: dict[str, str], *, exclude: set[str]) -> dict[str, float]:
    with labels_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    every = [r["label"] == truth[r["path"]] for r in rows]
    kept = [r["label"] == truth[r["path"]] for r in rows if r["path"] not in exclude]
    model = [r for r in rows if r["source"] == "model"]
    accepted = [r["label"] == truth[r["path"]] for r in model if r["status"] == "accepted"]
    return {"dataset_accuracy": sum(every) / len(every),  # what a user exports: human + model labels
            "accuracy_outside_reviewed": sum(kept) / len(kept),  # same images before/after: the seeds' effect
            "human_labels": sum(r["source"] == "human" for r in rows),
            "accepted_precision": sum(accepted) / max(len(accepted), 1),
            "accepted_coverage": len(accepted) / max(len(model), 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def review(ws: Path, truth: dict[str, str], n: int) -> dict[str, float]:
    port = free_port()
    proc = pixlabel("review", str(ws), "--port", str(port), "--token", TOKEN, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/api/progress", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {TOKEN.split(':')[1]}"}) as http:
            before = http.get("/api/progress").json()
            items = http.get("/api/queue", params={"limit": n, "source": "model"}).json()["items"]
            wrong = sum(x["label"] != truth[x["path"]] for x in items)
            t0 = time.perf_counter()
            for x in items:
                http.post("/api/labels", json={"path": x["path"], "label": truth[x["path"]]}).raise_for_status()
            post_s = time.perf_counter() - t0
            after = http.get("/api/progress").json()
            (ws / "labels_after_review.csv").write_bytes(http.get("/api/labels.csv").content)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"reviewed": len(items), "were_wrong": wrong, "post_ms_mean": 1000 * post_s / max(len(items), 1),
            "estimated_accuracy_before": before["estimated_accuracy"],
            "estimated_accuracy_after_review": after["estimated_accuracy"],
            "paths": [x["path"] for x in items]}  # type: ignore[dict-item]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--review", type=int, default=200)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-review-loop"))
    ap.add_argument("--out", type=Path, default=Path("bench/out/review_loop.json"))
    args = ap.parse_args()

    ds = subsample(fashion_mnist(), args.size, seed=args.seed)
    data = args.work / "data"
    paths = write_image_folder(ds, data)
    truth = {p: ds.classes[k] for p, k in zip(paths, ds.labels, strict=True)}
    seed_csv = data / "seeds.csv"
    with seed_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows((paths[i], truth[paths[i]]) for i in pick_seeds(ds.labels, per_class=args.per_class,
                                                                     seed=args.seed))
    ws = args.work / f"ws-{args.method}"
    if ws.exists():
        raise SystemExit(f"{ws} exists: remove it (the benchmark needs a fresh workspace)")

    first_s, first_out = label(data / "images", seed_csv, ws, args.method)
    (ws / "labels.csv").replace(ws / "labels_first_run.csv")
    seeds = {r["path"] for r in csv.DictReader(seed_csv.open())}
    reviewed = review(ws, truth, args.review)
    touched = seeds | set(reviewed.pop("paths"))  # type: ignore[arg-type]
    before = grade(ws / "labels_first_run.csv", truth, exclude=touched)
    reviewed_only = grade(ws / "labels_after_review.csv", truth, exclude=touched)
    second_s, second_out = label(data / "images", seed_csv, ws, args.method)
    after = grade(ws / "labels.csv", truth, exclude=touched)
    result = {"images": args.size, "seeds_per_class": args.per_class, "method": args.method,
              "first_label_s": round(first_s, 1), "second_label_s": round(second_s, 1),
              "first_summary": first_out.strip().splitlines()[:3],
              "second_summary": second_out.strip().splitlines()[:3],
              "review": reviewed, "first_run": before, "after_review": reviewed_only, "after_relabel": after}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
