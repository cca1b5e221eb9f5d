"""`pixlabel serve` against hostile requests: pixel bombs, slow decodes, missing tokens, rebinding Host, /readyz."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from pixlabel.errors import InputError
from pixlabel.serve import ServeConfig, create_app, open_served_model
from pixlabel.serve.decode import TooManyPixels, probe
from test_serve_app import model_dir, onnx_path, png  # noqa: F401  (fixtures)

TOKEN = "serve-secret-0123456789"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(side: int) -> bytes:
    """A real, valid all-black grey PNG of side x side pixels: ~1000x smaller than its pixels."""
    z = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 + zeros
    parts = [z.compress(row) for _ in range(side)]
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def jpeg(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="JPEG", quality=70)
    return buf.getvalue()


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def served(onnx_path: Path):  # noqa: F811
    return open_served_model(onnx_path)


def test_pixel_bombs_get_413_from_the_header_before_any_decode(served, monkeypatch) -> None:
    bomb = zero_png(13_000)  # 169 Mpx in ~170 KB: the amplification upload of issue 20
    assert len(bomb) < 300_000
    decoded: list[int] = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(1) or real_load(im))
    app = create_app(served, ServeConfig(max_upload_mb=10))
    with TestClient(app) as c:
        r = c.post("/predict", files=[("file", (f"z{i}.png", bomb, "image/png")) for i in range(3)])
        assert r.status_code == 413 and "z0.png" in r.json()["error"] and "--max-pixels" in r.json()["error"]
        assert decoded == []  # refused from the header alone
    # each image under the per-image limit, all of them together over the request budget
    app = create_app(served, ServeConfig(max_pixels=1_000_000, max_request_pixels=2_500_000))
    with TestClient(app) as c:
        r = c.post("/predict", files=[("file", (f"m{i}.png", zero_png(1000), "image/png")) for i in range(3)])
        assert r.status_code == 413 and "--max-request-pixels" in r.json()["error"] and "3,000,000" in r.json()["error"]
        assert decoded == []
        ok = c.post("/predict", files=[("file", (f"m{i}.png", zero_png(1000), "image/png")) for i in range(2)])
        assert ok.status_code == 200 and len(ok.json()) == 2
        assert 'pixlabel_upload_errors_total{reason="too_many_pixels"} 1.0' in c.get("/metrics").text


def test_jpegs_count_at_their_draft_scale_and_formats_outside_the_photo_set_are_refused() -> None:
    big = jpeg((4000, 3000))
    assert probe(big, max_pixels=25_000_000, size=(24, 24)) == 500 * 375  # decoded at 1/8 scale
    with pytest.raises(TooManyPixels):
        probe(big, max_pixels=10_000_000, size=(24, 24))  # the per-image limit reads the declared size
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PPM")  # Pillow opens it; a model server has no need to
    with pytest.raises(Exception, match="served format"):
        probe(buf.getvalue(), max_pixels=10_000, size=(24, 24))


def test_uploads_are_shrunk_to_the_model_input_at_decode(served) -> None:
    from pixlabel.serve.decode import decode_for_model

    im = decode_for_model(jpeg((640, 480)), max_pixels=10**7, size=(24, 24), mode="RGB")
    assert im.size == (24, 24) and im.mode == "RGB"


def test_a_slow_decode_never_stalls_healthz(served, monkeypatch) -> None:
    real_load = ImageFile.ImageFile.load

    def slow_load(im: ImageFile.ImageFile) -> Any:
        time.sleep(1.5)  # a pathological-but-legal small file
        return real_load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    with serve_in_thread(create_app(served, ServeConfig())) as url, httpx.Client(base_url=url, timeout=5) as http:
        http.get("/healthz")  # the connection is open before the clock starts
        done: list[int] = []
        t = threading.Thread(target=lambda: done.append(httpx.post(
            f"{url}/predict", files={"file": ("small.png", png(3), "image/png")}, timeout=30).status_code))
        t.start()
        time.sleep(0.3)  # the upload (1 KB: decoded inline on the event loop before issue 20) is decoding now
        waits = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            waits.append(time.perf_counter() - t0)
        t.join(timeout=30)
        assert done == [200]
        # 100 ms is the goal (bench/hostile_clients.py measures it); the bound here leaves room for 5 agents
        # on 2 cores, and a decode on the loop would hold all three for over a second
        assert sorted(waits)[1] < 0.25, f"/healthz took {[round(w * 1000) for w in waits]} ms behind a decode"


def test_token_guards_predict_and_metrics_but_not_health(served) -> None:
    with TestClient(create_app(served, ServeConfig(tokens=(TOKEN,)))) as c:
        files = {"file": ("a.png", png(1), "image/png")}
        assert c.post("/predict", files=files).status_code == 401
        assert c.post("/predict", files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/predict", files=files, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert {c.post("/predict", files=files).status_code for _ in range(12)} == {401}  # no token: no guess
        codes = [c.post("/predict", files=files, headers={"Authorization": f"Bearer x{i}"}).status_code
                 for i in range(10)]
        assert codes == [401] * 9 + [429]  # 10 wrong tokens a minute ("wrong" above was the first), then 429 ...
        r = c.post("/predict", files=files, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # ... even for the right one
    with pytest.raises(InputError, match="at least 16"):
        ServeConfig(tokens=("short-secret",))


def test_readyz_has_no_filesystem_path_and_headers_are_safe(served, onnx_path: Path) -> None:  # noqa: F811
    with TestClient(create_app(served, ServeConfig())) as c:
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"]
        assert str(onnx_path.parent) not in r.text and onnx_path.name not in r.text and "/" not in r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get("/docs").status_code == 404  # no CDN-loaded Swagger page on the model server


def test_rebinding_host_is_refused(served) -> None:
    from pixlabel.webguard import default_host_names

    app = create_app(served, ServeConfig(allowed_hosts=default_host_names("127.0.0.1")))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200
        r = c.get("/readyz", headers={"Host": "attacker.example:8000"})
        assert r.status_code == 400 and "--allowed-host" in r.json()["error"]


def test_cli_refuses_short_tokens_and_warns_off_loopback(onnx_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    import uvicorn

    from pixlabel.cli.main import main

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    assert main(["serve", str(onnx_path), "--token", "tooshort"]) == 2
    assert "at least 16" in capsys.readouterr().err and started == []
    assert main(["serve", str(onnx_path), "--host", "0.0.0.0"]) == 0
    assert "without --token" in capsys.readouterr().err
    assert main(["serve", str(onnx_path), "--host", "0.0.0.0", "--token", TOKEN]) == 0
    assert "without --token" not in capsys.readouterr().err
    assert main(["serve", str(onnx_path), "--max-pixels", "100", "--max-request-pixels", "50"]) == 2
    assert len(started) == 2


def test_zero_png_is_a_real_image() -> None:
    im = Image.open(io.BytesIO(zero_png(64)))
    im.load()
    assert im.size == (64, 64) and not np.asarray(im).any()
