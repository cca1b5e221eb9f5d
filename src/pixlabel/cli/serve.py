"""``pixlabel serve MODEL``: serve a model directory or an exported .onnx file over HTTP.

Example::

    pixlabel serve fmnist.onnx --port 8000 --max-batch 32
    curl -F file=@shoe.png http://127.0.0.1:8000/predict
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="serve a trained model over HTTP (FastAPI + ONNX Runtime)",
        description="Serve MODEL (a model directory, exported to ONNX on start, or an .onnx file). "
                    "POST /predict with multipart field 'file' (several allowed); GET /healthz, /readyz, "
                    "/metrics (Prometheus). Concurrent requests are batched (up to --max-batch images, "
                    "waiting at most --max-wait-ms). SIGTERM/Ctrl-C finish queued requests, then exit.")
    p.add_argument("model", type=Path, metavar="MODEL", help="model directory (model.yaml) or .onnx file")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-batch", type=positive_int, default=32, metavar="B",
                   help="images per model call (default 32; 1 disables batching)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, metavar="MS",
                   help="longest wait for a batch to fill (default 2)")
    p.add_argument("--max-upload-mb", type=_positive_float, default=10.0, metavar="M",
                   help="largest request body in MB; bigger gets 413 (default 10)")
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="classes in top_k (default 5)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="inference threads (default: one per core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from pixlabel.serve import ServeConfig, create_app, open_served_model

    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb,
                         top_k=args.top_k)
    model = open_served_model(args.model, threads=args.threads)
    print(f"serving {args.model} ({model.runtime}, {len(model.spec.classes)} classes) on "
          f"http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(model, config), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=30)
    return 0
