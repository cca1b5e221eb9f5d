"""ONNX export benchmark: PyTorch vs ONNX fp32 vs ONNX INT8 vs pruned, on the Fashion-MNIST test set.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/export_onnx.py            # trains SmallCNN first
    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/export_onnx.py --model runs/fmnist

Without ``--model`` a SmallCNN (width 32) is trained on the 60k training images for ``--epochs`` epochs
in this script (the ``pixlabel train`` command is a separate issue). Every variant goes through the real
``export_model`` pipeline; INT8 is calibrated on 256 training images (none from the test set). Accuracy is
on all 10,000 test images; latency is the median of single-image calls, throughput is batch 64, both on
preprocessed tensors with 2 threads (ONNX Runtime intra-op = 2, torch.set_num_threads(2)).
``--big`` also measures speed of timm ``tf_efficientnet_lite0`` at 128 px (ImageNet body, random
10-class head: speed and output agreement only), where INT8 kernels have enough work to pay off.
Writes bench/out/export_onnx.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixlabel.datasets import fashion_mnist
from pixlabel.export.demo_model import gray_to_input, train_smallcnn
from pixlabel.export.onnx_runtime import OnnxPredictor
from pixlabel.export.pipeline import ExportOptions, export_model, torch_logits
from pixlabel.models import ModelSpec, load_model, save_model
from pixlabel.models.arch import build_model

THREADS = 2


def speed(run: Any, x: np.ndarray, *, repeats: int = 200, batch: int = 64) -> tuple[float, float]:
    """(median ms per single image, images/s at ``batch``) for ``run(x) -> logits``."""
    one, big = x[:1], x[:batch]
    for _ in range(5):
        run(one)
        run(big)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(one)
        t.append(time.perf_counter() - t0)
    n = max(10, repeats // 10)
    t0 = time.perf_counter()
    for _ in range(n):
        run(big)
    return statistics.median(t) * 1e3, n * batch / (time.perf_counter() - t0)


def write_folder(images: np.ndarray, labels: np.ndarray | None, classes: tuple[str, ...], root: Path) -> Path:
    for i, img in enumerate(images):
        d = root / classes[labels[i]] if labels is not None else root
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    return root


def onnx_row(name: str, path: Path, x_test: np.ndarray, y_test: np.ndarray, rep: Any) -> dict[str, Any]:
    pred = OnnxPredictor(path, threads=THREADS)
    acc = float((pred.logits(x_test).argmax(1) == y_test).mean())
    lat, thr = speed(pred.logits, x_test)
    return {"variant": name, "accuracy": acc, "latency_ms_b1": lat, "throughput_b64": thr,
            "size_bytes": path.stat().st_size, "compressed_bytes": rep.compressed_bytes,
            "max_abs_diff_vs_torch": rep.max_abs_diff, "sparsity": rep.sparsity, "export": rep.to_dict()}


def smallcnn_rows(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ds = fashion_mnist()
    xtr, ytr, xte, yte = ds.images[:60000], ds.labels[:60000], ds.images[60000:], ds.labels[60000:]
    info: dict[str, Any] = {}
    if args.model:
        model_dir = Path(args.model)
    else:
        t0 = time.perf_counter()
        net, spec = train_smallcnn(xtr, ytr, ds.classes, epochs=args.epochs, width=args.width, seed=0)
        info["train_s"] = round(time.perf_counter() - t0, 1)
        model_dir = save_model(work / "model", net, spec)
    net, spec = load_model(model_dir)
    x_test = gray_to_input(xte, spec)
    # the fast array path must equal what deployed models do with PIL images
    assert np.allclose(x_test[:8], spec.preprocess([Image.fromarray(i) for i in xte[:8]]), atol=1e-6)
    rng = np.random.default_rng(0)
    calib = write_folder(xtr[rng.choice(60000, 256, replace=False)], None, ds.classes, work / "calib")
    tune_idx = rng.choice(60000, args.finetune_n, replace=False)
    labeled = write_folder(xtr[tune_idx], ytr[tune_idx], ds.classes, work / "labeled")

    rows = []
    acc = float((torch_logits(net, x_test).argmax(1) == yte).mean())
    with torch.inference_mode():
        lat, thr = speed(lambda a: net(torch.from_numpy(a)), x_test)
    rows.append({"variant": "pytorch fp32 (eager)", "accuracy": acc, "latency_ms_b1": lat, "throughput_b64": thr,
                 "size_bytes": (model_dir / "weights.pt").stat().st_size})
    variants = [
        ("onnx fp32", ExportOptions(calib=calib)),
        ("onnx int8 (static QDQ, per-channel)", ExportOptions(int8=True, calib=calib)),
        (f"pruned {args.prune:.0%} l1 unstructured, no fine-tune", ExportOptions(calib=calib, prune=args.prune)),
        (f"pruned {args.prune:.0%} l1 unstructured + 1 epoch on {args.finetune_n}",
         ExportOptions(calib=calib, prune=args.prune, labeled=labeled, finetune_epochs=1)),
        (f"pruned {args.sprune:.0%} ln structured + 1 epoch on {args.finetune_n}",
         ExportOptions(calib=calib, prune=args.sprune, structured=True, labeled=labeled, finetune_epochs=1)),
        (f"pruned {args.prune:.0%} l1 + fine-tune + int8",
         ExportOptions(int8=True, calib=calib, prune=args.prune, labeled=labeled, finetune_epochs=1)),
    ]
    for i, (name, opts) in enumerate(variants):
        out = work / f"v{i}.onnx"
        t0 = time.perf_counter()
        rep = export_model(model_dir, out, opts)
        row = onnx_row(name, out, x_test, yte, rep)
        row["export_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{name}: acc {row['accuracy']:.4f}, {row['latency_ms_b1']:.3f} ms, {row['throughput_b64']:.0f} img/s",
              flush=True)
    return rows, info


def big_rows(work: Path) -> list[dict[str, Any]]:
    """tf_efficientnet_lite0 at 128 px: enough compute per image for INT8 kernels to matter."""
    ds = fashion_mnist()
    spec = ModelSpec(arch="timm:tf_efficientnet_lite0", classes=ds.classes, image_size=(128, 128))
    net = build_model(spec, pretrained=True).eval()
    model_dir = save_model(work / "lite0", net, spec)
    rng = np.random.default_rng(1)
    calib = write_folder(ds.images[rng.choice(60000, 128, replace=False)], None, ds.classes, work / "calib128")
    imgs = [Image.fromarray(i) for i in ds.images[60000:60064]]
    x = spec.preprocess(imgs)
    rows = []
    with torch.inference_mode():
        lat, thr = speed(lambda a: net(torch.from_numpy(a)), x, repeats=30)
    rows.append({"variant": "lite0@128 pytorch fp32 (eager)", "latency_ms_b1": lat, "throughput_b64": thr,
                 "size_bytes": (model_dir / "weights.pt").stat().st_size})
    for name, opts in (("lite0@128 onnx fp32", ExportOptions(calib=calib, calib_count=128)),
                       ("lite0@128 onnx int8", ExportOptions(int8=True, calib=calib, calib_count=128))):
        out = work / (name.split()[-1] + "_lite0.onnx")
        rep = export_model(model_dir, out, opts)
        pred = OnnxPredictor(out, threads=THREADS)
        lat, thr = speed(pred.logits, x, repeats=30)
        ref = torch_logits(net, x).argmax(1)
        rows.append({"variant": name, "latency_ms_b1": lat, "throughput_b64": thr, "size_bytes": out.stat().st_size,
                     "max_abs_diff_vs_torch": rep.max_abs_diff,
                     "top1_agreement_vs_torch": float((pred.logits(x).argmax(1) == ref).mean())})
        print(f"{name}: {lat:.2f} ms, {thr:.0f} img/s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="existing model directory (default: train SmallCNN here)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--prune", type=float, default=0.5)
    ap.add_argument("--sprune", type=float, default=0.25, help="structured pruning amount")
    ap.add_argument("--finetune-n", type=int, default=10000)
    ap.add_argument("--big", action="store_true", help="also measure tf_efficientnet_lite0 at 128 px")
    ap.add_argument("--out", type=Path, default=Path("bench/out/export_onnx.json"))
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory(prefix="pixlabel-bench-export-") as tmp:
        rows, info = smallcnn_rows(args, Path(tmp))
        big = big_rows(Path(tmp)) if args.big else []
    result = {"machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform()},
              "threads": THREADS, "epochs": args.epochs, "width": args.width, **info,
              "smallcnn": rows, "lite0_128": big}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| variant | test acc | ms/img b1 | img/s b64 | size | zipped |")
    print("|---|---|---|---|---|---|")
    for r in rows + big:
        acc = f"{r['accuracy']:.2%}" if "accuracy" in r else "–"
        z = f"{r['compressed_bytes'] / 1e3:.0f} kB" if "compressed_bytes" in r else "–"
        print(f"| {r['variant']} | {acc} | {r['latency_ms_b1']:.3f} | {r['throughput_b64']:.0f} | "
              f"{r['size_bytes'] / 1e3:.0f} kB | {z} |")


if __name__ == "__main__":
    main()
