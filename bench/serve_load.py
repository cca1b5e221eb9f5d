"""Load test of ``pixlabel serve`` on loopback: p50/p99 latency and throughput, batching vs ``--max-batch 1``.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/serve_load.py --requests 2000 --concurrency 16

For each model (SmallCNN w32 at 28 px; tf_efficientnet_lite0 at 128 px with ``--big``) the real CLI server
is started as a subprocess (``pixlabel serve MODEL.onnx --max-batch B``), warmed up with 50 requests, then
hit by ``--requests`` POST /predict requests (one Fashion-MNIST test PNG each, 16 in flight, httpx async)
from this process. Weights are random-init except lite0's ImageNet body: speed does not depend on them.
Client and server share the same 2 cores, so absolute numbers are a floor for a real deployment.
Writes bench/out/serve_load.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch
from PIL import Image

from pixlabel.datasets import FASHION_CLASSES, fashion_mnist
from pixlabel.export.onnx_export import write_onnx
from pixlabel.models import ModelSpec
from pixlabel.models.arch import build_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_onnx(kind: str, work: Path) -> Path:
    if kind == "smallcnn":
        spec = ModelSpec(arch="smallcnn", classes=FASHION_CLASSES, image_size=(28, 28), in_chans=1,
                         mean=(0.286,), std=(0.353,), arch_options={"width": 32})
    else:
        spec = ModelSpec(arch="timm:tf_efficientnet_lite0", classes=FASHION_CLASSES, image_size=(128, 128))
    torch.manual_seed(0)
    return write_onnx(build_model(spec, pretrained=kind != "smallcnn").eval(), spec, work / f"{kind}.onnx")


async def load(base: str, bodies: list[bytes], n: int, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await client.post("/predict", files={"file": (f"{i}.png", bodies[i % len(bodies)], "image/png")})
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
        wall = time.perf_counter() - t0
    return latencies, wall, errors


def batch_stats(metrics: str) -> dict[str, float]:
    vals = {line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines()
            if line.startswith("pixlabel_batch_size_")}
    count, total = vals.get("pixlabel_batch_size_count", 0.0), vals.get("pixlabel_batch_size_sum", 0.0)
    return {"model_calls": count, "mean_batch": total / count if count else 0.0}


def run_server(model: Path, max_batch: int, args: argparse.Namespace, bodies: list[bytes]) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "-q", "serve", str(model), "--port", str(port),
           "--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        asyncio.run(load(base, bodies, 50, args.concurrency))  # warm-up
        before = batch_stats(httpx.get(f"{base}/metrics").text)
        lat, wall, errors = asyncio.run(load(base, bodies, args.requests, args.concurrency))
        after = batch_stats(httpx.get(f"{base}/metrics").text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    calls = after["model_calls"] - before["model_calls"]
    ms = sorted(x * 1e3 for x in lat)
    return {"max_batch": max_batch, "requests": len(lat), "errors": errors, "wall_s": wall,
            "throughput_rps": len(lat) / wall, "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))], "mean_ms": statistics.fmean(ms),
            "model_calls": calls, "mean_batch": args.requests / calls if calls else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--big", action="store_true", help="also tf_efficientnet_lite0 at 128 px")
    ap.add_argument("--models", nargs="+", choices=("smallcnn", "lite0_128"), default=None,
                    help="models to run (default smallcnn, plus lite0_128 with --big); rows merge into --out")
    ap.add_argument("--out", type=Path, default=Path("bench/out/serve_load.json"))
    args = ap.parse_args()
    ds = fashion_mnist()
    bodies = []
    for img in ds.images[60000:60500]:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        bodies.append(buf.getvalue())
    rows = []
    with tempfile.TemporaryDirectory(prefix="pixlabel-bench-serve-") as tmp:
        for kind in args.models or ["smallcnn"] + (["lite0_128"] if args.big else []):
            model = make_onnx(kind, Path(tmp))
            for mb in (args.max_batch, 1):
                row = {"model": kind, **run_server(model, mb, args, bodies)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    old = json.loads(args.out.read_text())["rows"] if args.models and args.out.exists() else []
    rows = [r for r in old if r["model"] not in args.models] + rows if args.models else rows
    result = {"requests": args.requests, "concurrency": args.concurrency, "max_wait_ms": args.max_wait_ms,
              "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| model | --max-batch | req/s | p50 ms | p99 ms | mean batch | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['max_batch']} | {r['throughput_rps']:.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['mean_batch']:.2f} | {r['errors']} |")


if __name__ == "__main__":
    main()
