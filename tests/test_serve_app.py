"""Model server: predictions, batching, errors (415/413/400), health, metrics, graceful shutdown."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from pixlabel.export.onnx_export import write_onnx
from pixlabel.models import ModelSpec, load_predictor, save_model
from pixlabel.models.arch import build_model
from pixlabel.serve import ServeConfig, create_app, open_served_model
from pixlabel.serve.batcher import BatcherClosed, MicroBatcher

CLASSES = ("circle", "square", "stripes")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    spec = ModelSpec(arch="smallcnn", classes=CLASSES, image_size=(24, 24), in_chans=3,
                     arch_options={"width": 4})
    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("m") / "model", build_model(spec).eval(), spec)


@pytest.fixture(scope="module")
def onnx_path(model_dir, tmp_path_factory) -> Path:
    from pixlabel.models.spec import load_model

    net, spec = load_model(model_dir)
    return write_onnx(net, spec, tmp_path_factory.mktemp("o") / "model.onnx")


def png(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def client(onnx_path):
    app = create_app(open_served_model(onnx_path), ServeConfig(max_batch=8, max_upload_mb=0.05, top_k=2))
    with TestClient(app) as c:
        yield c


def test_predict_one_and_many_match_the_model(client, onnx_path):
    r = client.post("/predict", files={"file": ("a.png", png(1), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["file"] == "a.png" and body["label"] in CLASSES
    assert [t["label"] for t in body["top_k"]][0] == body["label"] and len(body["top_k"]) == 2
    assert body["top_k"][0]["confidence"] == body["confidence"] >= body["top_k"][1]["confidence"]

    files = [("file", (f"{i}.png", png(i), "image/png")) for i in range(3)]
    r = client.post("/predict", files=files)
    many = r.json()
    assert r.status_code == 200 and [m["file"] for m in many] == ["0.png", "1.png", "2.png"]
    want = load_predictor(onnx_path).predict_proba([Image.open(io.BytesIO(png(i))) for i in range(3)])
    got = np.array([m["confidence"] for m in many])
    np.testing.assert_allclose(got, want.max(1), atol=1e-5)
    assert [m["label"] for m in many] == [CLASSES[k] for k in want.argmax(1)]


def test_bad_uploads_get_json_errors(client):
    r = client.post("/predict", files={"file": ("notes.txt", b"hello, not pixels", "text/plain")})
    assert r.status_code == 415 and "notes.txt" in r.json()["error"]
    r = client.post("/predict", files={"file": ("empty.png", b"", "image/png")})
    assert r.status_code == 415 and "empty" in r.json()["error"]
    r = client.post("/predict", files={"other": ("a.png", png(1), "image/png")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]
    big = png(5, size=(200, 200))  # ~120 kB of noise, the limit is 0.05 MB
    r = client.post("/predict", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "MB" in r.json()["error"]


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] and ready.json()["runtime"] == "onnxruntime"
    for i in range(3):
        client.post("/predict", files={"file": (f"{i}.png", png(i), "image/png")})
    client.post("/predict", files={"file": ("x.txt", b"nope", "text/plain")})
    text = client.get("/metrics").text
    assert 'pixlabel_requests_total{endpoint="/predict",status="200"} 3.0' in text
    assert 'pixlabel_requests_total{endpoint="/predict",status="415"} 1.0' in text
    assert 'pixlabel_request_latency_seconds_count{endpoint="/predict"} 3.0' in text
    assert "pixlabel_batch_size_count 3.0" in text
    counts = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("pixlabel_predictions_total{")]
    assert sum(counts) == 3.0
    mean = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("pixlabel_confidence_mean ")]
    assert len(mean) == 1 and 1 / len(CLASSES) <= mean[0] <= 1.0


def test_model_dir_is_served_through_onnx(model_dir):
    served = open_served_model(model_dir)
    assert served.runtime == "onnxruntime" and served.spec.classes == CLASSES


def test_batcher_merges_concurrent_requests_and_drains_on_stop():
    sizes: list[int] = []
    release = threading.Event()

    def predict(images):
        release.wait(5)  # the first batch blocks until every request is queued behind it
        return np.tile(np.arange(len(images), dtype=np.float32)[:, None], (1, 2))

    async def scenario(max_batch: int) -> list[np.ndarray]:
        sizes.clear()
        release.clear()
        b = MicroBatcher(predict, max_batch=max_batch, max_wait_ms=1, on_batch=sizes.append)
        await b.start()
        tasks = [asyncio.create_task(b.submit([Image.new("RGB", (4, 4))]))]
        await asyncio.sleep(0.05)  # the first request is now inside the (blocked) model call
        tasks += [asyncio.create_task(b.submit([Image.new("RGB", (4, 4))] * n)) for n in (1, 2, 1, 1)]
        await asyncio.sleep(0.05)
        release.set()
        stop = asyncio.create_task(b.stop())  # drain: queued requests are still answered
        out = await asyncio.gather(*tasks)
        await stop
        with pytest.raises(BatcherClosed):
            await b.submit([Image.new("RGB", (4, 4))])
        return out

    out = asyncio.run(scenario(8))
    assert sizes == [1, 5]  # the first ran alone; the other four requests (5 images) became one batch
    assert [o.shape[0] for o in out] == [1, 1, 2, 1, 1]
    assert out[2][:, 0].tolist() == [1.0, 2.0]  # each request gets its own rows of the batch back
    asyncio.run(scenario(1))
    assert sizes == [1, 1, 2, 1, 1]  # max_batch 1: no merging (a 2-image request still runs whole)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_cli_server_end_to_end_and_sigterm(onnx_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pixlabel.cli.main", "serve", str(onnx_path), "--port", str(port),
                             "--max-batch", "4", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not become ready: " + proc.stderr.read1().decode())  # type: ignore[union-attr]

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                return await asyncio.gather(*[c.post("/predict", files={"file": (f"{i}.png", png(i), "image/png")})
                                              for i in range(12)])

        rs = asyncio.run(burst())
        assert all(r.status_code == 200 for r in rs)
        assert [r.json()["file"] for r in rs] == [f"{i}.png" for i in range(12)]
        assert "pixlabel_batch_size_bucket" in httpx.get(f"{base}/metrics").text
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so supervisors see why it exited
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "drained and stopped" in proc.stderr.read().decode()  # the lifespan shutdown ran
    finally:
        if proc.poll() is None:
            proc.kill()
