"""The FastAPI application: ``POST /predict``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

``/predict`` takes multipart field ``file`` (repeat it for several images) and answers
``{"file", "label", "confidence", "top_k": [{"label", "confidence"}, ...]}`` for one file, a list of those
for several. Errors are JSON ``{"error": ...}`` naming the upload: 400 no ``file`` field, 401 no valid
token (when the server has one), 413 a request body over ``max_upload_mb`` or an image over ``max_pixels``
or a request over ``max_request_pixels``, 415 an upload that is not a decodable image, 429 too many wrong
tokens, 503 while shutting down. ``/healthz`` and ``/readyz`` are always open; ``/metrics`` needs the token.

Every upload's header is read before any is decoded (the pixel limits are checked on what the header
declares), and decoding runs in a small thread pool, never on the event loop, straight into the model's
input size (``serve/decode.py``).

Example::

    app = create_app(open_served_model("model.onnx"), ServeConfig(max_batch=32, max_upload_mb=10))
    # curl -F file=@shoe.png http://127.0.0.1:8000/predict
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import UploadFile

from pixlabel.io.images import ImageDecodeError
from pixlabel.serve.batcher import BatcherClosed, MicroBatcher
from pixlabel.serve.decode import SERVE_MAX_PIXELS, SERVE_REQUEST_PIXELS, TooManyPixels, decode_for_model, probe
from pixlabel.serve.metrics import ServerMetrics
from pixlabel.serve.model import ServedModel
from pixlabel.webguard import (
    BodyLimit,
    BodyRejected,
    FailedAuthLimiter,
    HostCheck,
    SecurityHeaders,
    bearer,
    check_secret,
    client_address,
    matches,
)

log = logging.getLogger(__name__)
GIL_SWITCH_S = 0.001  # see lifespan()
DECODE_WORKERS = min(4, os.cpu_count() or 2)  # bounds decode memory: at most this many full-size images at once


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 32  # images per model call; 1 disables batching
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for company
    max_upload_mb: float = 10.0  # whole request body
    max_files: int = 64  # per request
    top_k: int = 5
    max_pixels: int = SERVE_MAX_PIXELS  # per image, as its header declares
    max_request_pixels: int = SERVE_REQUEST_PIXELS  # per request, summed over uploads (after JPEG draft)
    tokens: tuple[str, ...] = ()  # Bearer secrets for /predict and /metrics; empty: open
    allowed_hosts: frozenset[str] | None = None  # Host names answered (IP literals always); None: no check

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_files < 1 or self.top_k < 1:
            raise ValueError("max_batch, max_files and top_k must be at least 1")
        if self.max_upload_mb <= 0 or self.max_wait_ms < 0:
            raise ValueError("max_upload_mb must be > 0 and max_wait_ms >= 0")
        if self.max_pixels < 1 or self.max_request_pixels < self.max_pixels:
            raise ValueError("max_pixels must be >= 1 and max_request_pixels >= max_pixels")
        for secret in self.tokens:
            check_secret(secret)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _answer(name: str, probs: np.ndarray, classes: tuple[str, ...], k: int) -> dict[str, Any]:
    order = np.argsort(-probs)[:k]
    return {"file": name, "label": classes[int(order[0])], "confidence": float(probs[order[0]]),
            "top_k": [{"label": classes[int(i)], "confidence": float(probs[i])} for i in order]}


def _probe_all(datas: Sequence[bytes], *, max_pixels: int, size: tuple[int, int]) -> list[int | ImageDecodeError]:
    out: list[int | ImageDecodeError] = []
    for data in datas:
        try:
            out.append(probe(data, max_pixels=max_pixels, size=size))
        except ImageDecodeError as exc:
            out.append(exc)
    return out


def create_app(model: ServedModel, config: ServeConfig | None = None) -> FastAPI:
    """The server for ``model``; the batcher starts with the app and drains on shutdown."""
    cfg = config or ServeConfig()
    metrics = ServerMetrics()
    batcher = MicroBatcher(model.predict_proba, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                           on_batch=metrics.batch_size.observe)
    classes = model.spec.classes
    k = min(cfg.top_k, len(classes))
    size = model.spec.image_size
    mode = "L" if model.spec.in_chans == 1 else "RGB"
    limiter = FailedAuthLimiter()
    decoders: list[ThreadPoolExecutor] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The event loop, the inference thread (preprocessing holds the GIL) and decode threads take turns on
        # the GIL; at Python's default 5 ms switch interval every hand-off can stall the loop that long.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, GIL_SWITCH_S))
        decoders.append(ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="pixlabel-decode"))
        await batcher.start()
        log.info("serving %s (%s, %d classes), max batch %d", model.source, model.runtime, len(classes),
                 cfg.max_batch)
        yield
        await batcher.stop()  # uvicorn has stopped accepting; answer what is queued, then exit
        decoders.pop().shutdown(wait=True)
        sys.setswitchinterval(switch)
        log.info("model server drained and stopped")

    app = FastAPI(title="pixlabel model server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.metrics, app.state.batcher, app.state.model = metrics, batcher, model

    def count_rejected(path: str, status: int) -> None:
        metrics.requests.labels(endpoint=path, status=str(status)).inc()
        metrics.upload_errors.labels(reason="too_large" if status == 413 else "too_slow").inc()

    app.add_middleware(BodyLimit, limit=cfg.max_upload_bytes, hint=" (--max-upload-mb)", on_reject=count_rejected)
    if cfg.allowed_hosts is not None:
        app.add_middleware(HostCheck, names=cfg.allowed_hosts)
    app.add_middleware(SecurityHeaders, csp="default-src 'none'; frame-ancestors 'none'")

    def error(status: int, message: str, reason: str, endpoint: str = "/predict",
              headers: dict[str, str] | None = None) -> JSONResponse:
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        metrics.upload_errors.labels(reason=reason).inc()
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def refused(request: Request, endpoint: str) -> JSONResponse | None:
        """None when the request may proceed; else the 401/429 answer (checked before the body is read)."""
        if not cfg.tokens:
            return None
        client = client_address(request.scope)
        wait = limiter.retry_after(client)
        if wait:
            return error(429, f"too many wrong tokens from this address; retry in {wait:.0f} s", "rate_limited",
                         endpoint, {"Retry-After": str(int(wait) + 1)})
        presented = bearer(request.headers.get("authorization"))
        if matches(presented, cfg.tokens):
            return None
        if presented:  # a wrong token is a guess; no token at all is not
            limiter.failed(client)
        return error(401, "this server needs a token: Authorization: Bearer TOKEN", "unauthorized", endpoint,
                     {"WWW-Authenticate": "Bearer"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = batcher.running  # no model path here: this endpoint is open to anyone who can connect
        body = {"ready": ready, "runtime": model.runtime, "classes": list(classes)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", response_model=None)
    async def metrics_endpoint(request: Request) -> Response:
        if (denied := refused(request, "/metrics")) is not None:
            return denied
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict", response_model=None)
    async def predict(request: Request) -> JSONResponse | dict[str, Any] | list[dict[str, Any]]:
        t0 = time.perf_counter()
        if (denied := refused(request, "/predict")) is not None:
            return denied
        try:
            form = await request.form(max_files=cfg.max_files, max_fields=cfg.max_files + 16)
        except BodyRejected:
            raise  # BodyLimit answers 413/408 itself
        except Exception as exc:  # malformed multipart in any of its forms: the client's fault, say so
            return error(400, f"cannot read the multipart form: {exc}", "bad_form")
        uploads = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not uploads:
            return error(400, "no image: send multipart/form-data with one or more 'file' fields", "no_file")
        names = [up.filename or f"file #{i + 1}" for i, up in enumerate(uploads)]
        datas = [await up.read() for up in uploads]
        loop = asyncio.get_running_loop()
        pool = decoders[0]
        # every header first: a request over its budget is refused before any of it is decoded
        costs = await loop.run_in_executor(pool, lambda: _probe_all(datas, max_pixels=cfg.max_pixels, size=size))
        for name, cost in zip(names, costs, strict=True):
            if isinstance(cost, TooManyPixels):
                return error(413, f"{name}: {cost.reason}", "too_many_pixels")
            if isinstance(cost, ImageDecodeError):
                return error(415, f"{name}: {cost.reason}", "not_an_image")
        total = sum(c for c in costs if isinstance(c, int))
        if total > cfg.max_request_pixels:
            return error(413, f"the {len(datas)} images decode to {total:,} pixels; this server decodes at most "
                              f"{cfg.max_request_pixels:,} per request (--max-request-pixels): send fewer or "
                              "smaller images", "too_many_pixels")

        def decode(data: bytes) -> Image.Image:
            return decode_for_model(data, max_pixels=cfg.max_pixels, size=size, mode=mode)

        results = await asyncio.gather(*[loop.run_in_executor(pool, decode, d) for d in datas],
                                       return_exceptions=True)
        images: list[Image.Image] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, ImageDecodeError):
                return error(415, f"{name}: {result.reason}", "not_an_image")
            if isinstance(result, BaseException):
                raise result
            images.append(result)
        try:
            probs = await batcher.submit(images)
        except BatcherClosed as exc:
            return error(503, str(exc), "shutting_down")
        answers = [_answer(n, p, classes, k) for n, p in zip(names, probs, strict=True)]
        for a in answers:
            metrics.observe_prediction(a["label"], a["confidence"])
        metrics.requests.labels(endpoint="/predict", status="200").inc()
        metrics.latency.labels(endpoint="/predict").observe(time.perf_counter() - t0)
        return answers[0] if len(answers) == 1 else answers

    return app
