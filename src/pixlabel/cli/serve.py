"""``pixlabel serve MODEL``: serve a model directory or an exported .onnx file over HTTP.

Example::

    pixlabel serve fmnist.onnx --port 8000 --max-batch 32
    curl -F file=@shoe.png http://127.0.0.1:8000/predict
    pixlabel serve fmnist.onnx --host 0.0.0.0 --token "$(cat token.txt)" --allowed-host models.example.org
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int
from pixlabel.errors import InputError
from pixlabel.serve.decode import SERVE_MAX_PIXELS, SERVE_REQUEST_PIXELS
from pixlabel.webguard import MIN_SECRET_CHARS, default_host_names, is_loopback


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
    p.add_argument("--max-pixels", type=positive_int, default=SERVE_MAX_PIXELS, metavar="P",
                   help=f"largest image (width x height, read from its header before decoding); bigger gets 413 "
                        f"(default {SERVE_MAX_PIXELS:,})")
    p.add_argument("--max-request-pixels", type=positive_int, default=SERVE_REQUEST_PIXELS, metavar="P",
                   help="pixels one request may decode in all (JPEGs count at their draft scale); more gets 413 "
                        f"(default {SERVE_REQUEST_PIXELS:,})")
    p.add_argument("--token", action="append", default=[], metavar="SECRET",
                   help="require Authorization: Bearer SECRET on /predict and /metrics (repeatable; at least "
                        f"{MIN_SECRET_CHARS} characters); /healthz and /readyz stay open")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name clients use to reach the server (repeatable); requests naming another "
                        "Host get 400 (DNS-rebinding guard). IP addresses, localhost and --host always work")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from pixlabel.serve import ServeConfig, create_app, open_served_model

    if args.max_request_pixels < args.max_pixels:
        raise InputError(f"--max-request-pixels ({args.max_request_pixels:,}) must be at least --max-pixels "
                         f"({args.max_pixels:,})")
    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb,
                         top_k=args.top_k, max_pixels=args.max_pixels, max_request_pixels=args.max_request_pixels,
                         tokens=tuple(args.token), allowed_hosts=default_host_names(args.host, args.allowed_host))
    if not config.tokens and not is_loopback(args.host):
        print(f"warning: serving on {args.host} without --token: anyone who can reach this address can use "
              "/predict and /metrics", file=sys.stderr, flush=True)
    model = open_served_model(args.model, threads=args.threads)
    print(f"serving {args.model} ({model.runtime}, {len(model.spec.classes)} classes) on "
          f"http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(model, config), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=30)
    return 0
