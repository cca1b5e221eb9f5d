"""The FastAPI application: ``POST /predict``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

``/predict`` takes multipart field ``file`` (repeat it for several images) and answers
``{"file", "label", "confidence", "top_k": [{"label", "confidence"}, ...]}`` for one file, a list of those
for several. Errors are JSON ``{"error": ...}`` naming the upload: 400 no ``file`` field, 415 an upload
that is not a decodable image, 413 a request body over ``max_upload_mb``, 503 while shutting down.

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
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import UploadFile

from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageDecodeError, load_rgb
from pixlabel.serve.batcher import BatcherClosed, MicroBatcher
from pixlabel.serve.metrics import ServerMetrics
from pixlabel.serve.model import ServedModel

log = logging.getLogger(__name__)
INLINE_DECODE_BYTES = 256 * 1024  # smaller uploads decode on the event loop: a thread hop costs more than that
GIL_SWITCH_S = 0.001  # see lifespan()
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 32  # images per model call; 1 disables batching
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for company
    max_upload_mb: float = 10.0  # whole request body
    max_files: int = 64  # per request
    top_k: int = 5
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard per image

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_files < 1 or self.top_k < 1:
            raise ValueError("max_batch, max_files and top_k must be at least 1")
        if self.max_upload_mb <= 0 or self.max_wait_ms < 0:
            raise ValueError("max_upload_mb must be > 0 and max_wait_ms >= 0")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, from Content-Length before reading anything, or
    while streaming a chunked upload that has no Content-Length."""

    def __init__(self, app: Any, *, limit: int, metrics: ServerMetrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        self.metrics.requests.labels(endpoint=scope.get("path", "?"), status="413").inc()
        self.metrics.upload_errors.labels(reason="too_large").inc()
        mb = self.limit / (1024 * 1024)
        response = JSONResponse({"error": f"request body larger than the {mb:g} MB limit (--max-upload-mb)"},
                                status_code=413)
        await response(scope, _drain_nothing, send)


async def _drain_nothing() -> Message:
    return {"type": "http.disconnect"}


def decode_upload(data: bytes, *, max_pixels: int) -> Image.Image:
    """Bytes of one upload → RGB image, with the same safety rules as files on disk (bomb guard, EXIF
    orientation, every mode to RGB). Raises :class:`ImageDecodeError` with a readable reason."""
    if not data:
        raise ImageDecodeError("empty upload (0 bytes)")
    # load_rgb works on paths; a short-lived temp file keeps one decoder for disk and uploads
    fd, name = tempfile.mkstemp(prefix="pixlabel-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return load_rgb(name, max_pixels=max_pixels)
    finally:
        os.unlink(name)


def _answer(name: str, probs: np.ndarray, classes: tuple[str, ...], k: int) -> dict[str, Any]:
    order = np.argsort(-probs)[:k]
    return {"file": name, "label": classes[int(order[0])], "confidence": float(probs[order[0]]),
            "top_k": [{"label": classes[int(i)], "confidence": float(probs[i])} for i in order]}


def create_app(model: ServedModel, config: ServeConfig | None = None) -> FastAPI:
    """The server for ``model``; the batcher starts with the app and drains on shutdown."""
    cfg = config or ServeConfig()
    metrics = ServerMetrics()
    batcher = MicroBatcher(model.predict_proba, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                           on_batch=metrics.batch_size.observe)
    classes = model.spec.classes
    k = min(cfg.top_k, len(classes))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The event loop, the inference thread (preprocessing holds the GIL) and decode threads take turns on
        # the GIL; at Python's default 5 ms switch interval every hand-off can stall the loop that long.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, GIL_SWITCH_S))
        await batcher.start()
        log.info("serving %s (%s, %d classes), max batch %d", model.source, model.runtime, len(classes),
                 cfg.max_batch)
        yield
        await batcher.stop()  # uvicorn has stopped accepting; answer what is queued, then exit
        sys.setswitchinterval(switch)
        log.info("model server drained and stopped")

    app = FastAPI(title="pixlabel model server", lifespan=lifespan)
    app.state.metrics, app.state.batcher, app.state.model = metrics, batcher, model
    app.add_middleware(BodyLimit, limit=cfg.max_upload_bytes, metrics=metrics)

    def error(status: int, message: str, reason: str, endpoint: str = "/predict") -> JSONResponse:
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        metrics.upload_errors.labels(reason=reason).inc()
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = batcher.running
        body = {"ready": ready, "model": model.source, "runtime": model.runtime, "classes": list(classes)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict", response_model=None)
    async def predict(request: Request) -> JSONResponse | dict[str, Any] | list[dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            form = await request.form(max_files=cfg.max_files, max_fields=cfg.max_files + 16)
        except _TooLarge:
            raise
        except Exception as exc:  # malformed multipart, too many files: the client's fault, say so
            return error(400, f"cannot read the multipart form: {exc}", "bad_form")
        uploads = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not uploads:
            return error(400, "no image: send multipart/form-data with one or more 'file' fields", "no_file")
        images: list[Image.Image] = []
        names: list[str] = []
        for i, up in enumerate(uploads):
            name = up.filename or f"file #{i + 1}"
            data = await up.read()
            try:
                if len(data) <= INLINE_DECODE_BYTES:
                    images.append(decode_upload(data, max_pixels=cfg.max_pixels))
                else:  # a big photo takes milliseconds to decode: keep the loop serving others meanwhile
                    images.append(await asyncio.to_thread(decode_upload, data, max_pixels=cfg.max_pixels))
            except ImageDecodeError as exc:
                return error(415, f"{name}: {exc.reason}", "not_an_image")
            names.append(name)
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
