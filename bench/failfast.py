"""How fast does `pixlabel label` refuse bad input on a 70k-image folder? (issue 16: <= 5 s)

Writes Fashion-MNIST (all 70,000 images) as PNG files, then runs the real CLI in a fresh process (imports
included, as a user sees it) with bad seed files and flags, and times each until it exits. The baseline is the
code before the fail-fast change (``--baseline-commit``, extracted with ``git archive``) on the first case, in the
same run; it is stopped at ``--baseline-timeout`` seconds if it has not failed by then.

    flock /tmp/cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/failfast.py
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pixlabel.datasets import default_dataset, pick_seeds, write_image_folder

REPO = Path(__file__).resolve().parents[1]


def _seed_rows(paths: list[str], labels: np.ndarray, classes: tuple[str, ...]) -> list[list[str]]:
    idx = pick_seeds(labels, per_class=10, seed=0)
    return [[paths[i], classes[labels[i]]] for i in idx]


def _write(path: Path, rows: list[list[str]], extra_lines: str = "") -> str:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows(rows)
    if extra_lines:
        with path.open("a") as fh:
            fh.write(extra_lines)
    return str(path)


def _run(src: Path, args: list[str], *, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pixlabel.cli.main", "-q", "label", *args], env=env,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": round(time.perf_counter() - t0, 2), "exit_code": None, "timed_out": True,
                "message": f"still running after {timeout:.0f} s (killed)"}
    last = (p.stderr.strip().splitlines() or [""])[-1]
    return {"seconds": round(time.perf_counter() - t0, 2), "exit_code": p.returncode, "timed_out": False,
            "message": last[:300]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixlabel-bench"))
    ap.add_argument("--baseline-commit", default="c8a5b47")
    ap.add_argument("--baseline-timeout", type=float, default=420.0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/failfast.json"))
    ap.add_argument("--baseline-from", type=Path,
                    help="take the baseline from an earlier output of this script instead of re-running it "
                         "(it needs the CPU lock for ~4 min; the JSON says so)")
    args = ap.parse_args()

    ds = default_dataset()
    t0 = time.perf_counter()
    paths = write_image_folder(ds, args.work / "data")  # skips files already written
    write_s = time.perf_counter() - t0
    images = str(args.work / "data" / "images")
    rows = _seed_rows(paths, ds.labels, ds.classes)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        good = _write(tmp / "good.csv", rows)
        other = next(c for c in ds.classes if c != rows[0][1])  # the first seed's path again, another class
        cases = {
            "missing_path": ["--labels", _write(tmp / "missing.csv", rows + [["00000/nope.png", ds.classes[0]]])],
            "malformed_row": ["--labels", _write(tmp / "malformed.csv", rows, "00001.png,coat,extra,cells\n")],
            "one_class": ["--labels", _write(tmp / "one.csv", [r for r in rows if r[1] == ds.classes[0]])],
            "conflicting_rows": ["--labels", _write(tmp / "conflict.csv", rows + [[rows[0][0], other]])],
            "declared_class_unseeded": ["--labels", good, "--classes", ",".join([*ds.classes, "hat"])],
            "target_precision_1.5": ["--labels", good, "--target-precision", "1.5"],
            "image_size_8": ["--labels", good, "--image-size", "8"],
        }
        results = {}
        for name, extra in cases.items():
            r = _run(REPO / "src", [images, "--out", str(tmp / f"ws-{name}"), *extra], timeout=120)
            results[name] = r
            print(f"{name}: {r['seconds']} s, exit {r['exit_code']}: {r['message']}", flush=True)
        if args.baseline_from:
            baseline = json.loads(args.baseline_from.read_text())["baseline"]
            baseline["note"] = f"not re-run: taken from an earlier run of this script ({args.baseline_from.name})"
        else:
            base_src = tmp / "baseline"
            base_src.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline_commit, "src"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive, check=True)
            baseline = _run(base_src / "src", [images, "--out", str(tmp / "ws-baseline"), *cases["missing_path"]],
                            timeout=args.baseline_timeout)
        print(f"baseline missing_path: {baseline}", flush=True)
    out = {
        "dataset": ds.name, "images": len(paths), "write_folder_seconds": round(write_s, 1),
        "cases": results, "worst_seconds": max(r["seconds"] for r in results.values()),
        "all_exit_2": all(r["exit_code"] == 2 for r in results.values()),
        "baseline": {"commit": args.baseline_commit, "case": "missing_path", **baseline},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_seconds": 5.0, "cpu": os.cpu_count(), "note": "fresh CLI process per case, imports included; "
        "warm file-system cache (the folder was just listed)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("worst_seconds", "all_exit_2")}))


if __name__ == "__main__":
    main()
