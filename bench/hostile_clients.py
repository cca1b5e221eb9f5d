"""Hostile clients against `pixlabel serve` and `pixlabel review` on 127.0.0.1 (issue 20), bounded in requests
and time; then each server must still answer /healthz within 100 ms, and its RSS must have stayed below 2 GB.

    flock /tmp/cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/hostile_clients.py

Both servers run as the real CLI in subprocesses (a tiny random-init SmallCNN exported to ONNX; a 12-image
review workspace on SQLite). Attacks: the decompression-amplification request of issue 20 (60 all-black
13,000 x 13,000 PNGs, 10 MB), a 400 Mpx PNG, bodies over the limit (declared and chunked), deeply nested and
huge JSON, a DNS-rebinding Host, token guessing, traversal / overlong / symlink-loop image paths, and
slowloris-style connections that trickle headers or a body. A monitor thread samples each server's RSS every
50 ms; /healthz is timed on a fresh connection before (baseline), during the slowloris phase, and after.
Writes bench/out/hostile_clients.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SERVE_TOKEN = "serve-bench-token-0123456789"
REVIEW_SECRET = "review-bench-secret-0123456789"
RSS_LIMIT_MB = 2048
HEALTHZ_LIMIT_MS = 100.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(side: int) -> bytes:
    """A valid all-black grey PNG of side x side pixels (about side^2 / 1000 bytes)."""
    z = zlib.compressobj(9)
    row = bytes(side + 1)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def small_png(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (28, 28), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class RssMonitor(threading.Thread):
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs) / 2**20
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss)
            time.sleep(0.05)


def healthz_ms(base: str, n: int) -> list[float]:
    """``n`` timings of GET /healthz, each on a fresh TCP connection (what a supervisor's probe does), from
    connect to the last byte; a raw socket, so no client library's setup is in the number."""
    port = int(base.rsplit(":", 1)[1])
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while piece := s.recv(4096):
                answer += piece
        out.append((time.perf_counter() - t0) * 1000)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        time.sleep(0.02)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1)}


def raw_request(port: int, head: bytes, body_chunks: Iterator[bytes], timeout: float = 30) -> int:
    """Send ``head`` then chunks until the server answers; the status code (0 if the connection just closed)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(head)
        s.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += s.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                s.setblocking(True)
                s.sendall(chunk)
                s.setblocking(False)
            except OSError:  # the server answered and closed while we were still sending
                break
        s.setblocking(True)
        deadline = time.monotonic() + timeout
        while b"\r\n" not in answer and time.monotonic() < deadline:
            try:
                piece = s.recv(4096)
            except OSError:
                break
            if not piece:
                break
            answer += piece
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def patient(send: Callable[[], httpx.Response]) -> int:
    """A well-behaved client: after a 429 it waits as long as Retry-After says, once, then tries again (token
    guessing from 127.0.0.1 blocks every client of that address for up to a minute)."""
    r = send()
    if r.status_code == 429:
        time.sleep(float(r.headers.get("retry-after", "60")))
        r = send()
    return r.status_code


def repeat(n: int, chunk: bytes) -> Iterator[bytes]:
    for _ in range(n):
        yield chunk


async def _slowloris(port: int, n: int, hold_s: float, head: bytes, trickle: bytes, period: float
                     ) -> dict[str, int]:
    """``n`` connections that send ``head`` and then ``trickle`` every ``period`` s for ``hold_s``; how many the
    server answered (e.g. 408) or closed before the end, how many were still open."""
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(n):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            continue
        writer.write(head)
        conns.append((reader, writer))
    closed: set[int] = set()
    answered: Counter[str] = Counter()
    deadline = time.monotonic() + hold_s
    next_trickle = time.monotonic() + period
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        trickle_now = time.monotonic() >= next_trickle
        if trickle_now:
            next_trickle += period
        for i, (reader, writer) in enumerate(conns):
            if i in closed:
                continue
            try:
                if trickle_now:
                    writer.write(trickle)
                    await writer.drain()
                data = await asyncio.wait_for(reader.read(64), timeout=0.001)
            except TimeoutError:
                continue
            except OSError:
                closed.add(i)
                answered["reset"] += 1
                continue
            closed.add(i)
            status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else ("eof" if not data else "other")
            answered[status] += 1
    for _, writer in conns:
        writer.close()
    return {"opened": len(conns), "still_open_at_end": len(conns) - len(closed), **answered}


def slowloris(base: str, port: int, *, n: int, hold_s: float, head: bytes, trickle: bytes, period: float
              ) -> dict[str, Any]:
    """Run the slow connections in a thread while /healthz is timed from this one."""
    result: dict[str, Any] = {"hold_s": hold_s, "trickle_every_s": period}
    t = threading.Thread(target=lambda: result.update(asyncio.run(
        _slowloris(port, n, hold_s, head, trickle, period))))
    t.start()
    time.sleep(1.0)  # every connection is open and stalled
    during = []
    while t.is_alive():
        during += healthz_ms(base, 1)
        time.sleep(0.4)
    t.join()
    return {**result, "healthz_during": summary(during)}


@contextmanager
def server(cmd: list[str], base: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class Attacks:
    """Runs attacks, counts requests and status codes, and checks each against what is expected."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.requests = 0

    def run(self, name: str, expect: set[int], fn: Callable[[], int], n: int = 1) -> None:
        codes: Counter[int] = Counter()
        t0 = time.perf_counter()
        for _ in range(n):
            codes[fn()] += 1
        self.requests += n
        ok = set(codes) <= expect
        self.rows.append({"attack": name, "requests": n, "codes": {str(k): v for k, v in sorted(codes.items())},
                          "expected": sorted(expect), "ok": ok, "seconds": round(time.perf_counter() - t0, 2)})
        print(f"  {'ok ' if ok else 'BAD'} {name}: {dict(codes)} (expected {sorted(expect)})", flush=True)


def attack_serve(work: Path, hold_s: float, slow_n: int) -> dict[str, Any]:
    import torch

    from pixlabel.export.onnx_export import write_onnx
    from pixlabel.models import ModelSpec
    from pixlabel.models.arch import build_model

    spec = ModelSpec(arch="smallcnn", classes=tuple(f"c{i}" for i in range(10)), image_size=(28, 28), in_chans=1,
                     mean=(0.5,), std=(0.5,), arch_options={"width": 8})
    torch.manual_seed(0)
    onnx = write_onnx(build_model(spec).eval(), spec, work / "model.onnx")
    port = free_port()
    base = f"http://{HOST}:{port}"
    auth = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "serve", str(onnx), "--port", str(port), "--threads", "1",
           "--token", SERVE_TOKEN]
    bomb = zero_png(13_000)
    amplification = [("file", (f"z{i}.png", bomb, "image/png")) for i in range(60)]
    a = Attacks()
    with server(cmd, base) as proc:
        monitor = RssMonitor(proc.pid)
        monitor.start()
        idle_rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        baseline = healthz_ms(base, 20)
        legit = [("file", (f"{i}.png", small_png(i), "image/png")) for i in range(4)]

        def post(files: Any, headers: dict[str, str] | None = None, **kw: Any) -> int:
            return httpx.post(f"{base}/predict", files=files, headers=headers, timeout=60, **kw).status_code

        a.run("legit prediction (4 images)", {200}, lambda: post(legit, auth), 5)
        a.run(f"amplification: 60 x 13000^2 black PNGs ({len(bomb) * 60 / 2**20:.1f} MB, 10.1 Gpx), with token",
              {413}, lambda: post(amplification, auth), 5)
        a.run("amplification without token (refused before the body is read)", {401},
              lambda: post(amplification), 3)
        a.run("one 20000^2 PNG (400 Mpx)", {413}, lambda: post({"file": ("b.png", zero_png(20_000))}, auth), 2)
        a.run("6 x 4500^2 PNGs: each under --max-pixels, 121 Mpx together", {413},
              lambda: post([("file", (f"m{i}.png", zero_png(4500), "image/png")) for i in range(6)], auth), 2)
        a.run("65 files in one request (--max-files 64)", {400},
              lambda: post([("file", (f"{i}.png", small_png(i), "image/png")) for i in range(65)], auth), 2)
        form = {**auth, "Content-Type": "multipart/form-data; boundary=x"}
        a.run("garbage multipart", {400}, lambda: httpx.post(
            f"{base}/predict", content=b"--x\r\nnot a form", headers=form, timeout=30).status_code, 3)
        a.run("50 MB declared body", {413}, lambda: raw_request(port, (
            f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {SERVE_TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 52428800\r\n\r\n").encode(),
            repeat(800, b"\0" * 65536)), 3)
        part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'

        def chunked_upload() -> Iterator[bytes]:  # a well-formed part that never ends: only the size stops it
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
            yield from repeat(320, b"10000\r\n" + b"\0" * 65536 + b"\r\n")

        a.run("chunked upload without Content-Length (up to 20 MB)", {413}, lambda: raw_request(port, (
            f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {SERVE_TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n").encode(),
            chunked_upload()), 3)
        a.run("DNS-rebinding Host header", {400}, lambda: httpx.post(
            f"{base}/predict", files=legit, headers={**auth, "Host": "rebind.attacker.example"}, timeout=30
        ).status_code, 5)
        slow_headers = slowloris(
            base, port, n=slow_n, hold_s=hold_s, period=2.0,
            head=f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\n".encode(), trickle=b"X-Slow: 1\r\n")
        slow_body = slowloris(  # a pause longer than BodyLimit's 20 s idle timeout
            base, port, n=slow_n, hold_s=hold_s, period=hold_s - 5,
            head=(f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {SERVE_TOKEN}\r\n"
                  "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n").encode()
            + part, trickle=b"x" * 10)
        a.requests += 2 * slow_n
        a.run("legit prediction after the attacks above", {200}, lambda: post(legit, auth), 3)
        a.run("token guessing (30 wrong tokens)", {401, 429},
              lambda: post(legit, {"Authorization": f"Bearer guess-{time.perf_counter_ns()}-xxxxxxxx"}), 30)
        after = healthz_ms(base, 20)
        a.run("legit prediction after guessing (waits out Retry-After)", {200}, lambda: patient(
            lambda: httpx.post(f"{base}/predict", files=legit, headers=auth, timeout=60)), 1)
        monitor.stop.set()
        monitor.join()
        rss_after = psutil.Process(proc.pid).memory_info().rss / 2**20
    return {"rows": a.rows, "requests": a.requests, "healthz_baseline": summary(baseline),
            "healthz_after": summary(after), "slowloris_headers": slow_headers, "slowloris_body": slow_body,
            "rss_idle_mb": round(idle_rss, 1), "rss_peak_mb": round(monitor.peak_mb, 1),
            "rss_after_mb": round(rss_after, 1)}


def review_workspace(work: Path) -> Path:
    import numpy as np
    from PIL import Image

    from pixlabel.records import Label, Provenance
    from pixlabel.store import open_store

    images, ws = work / "images", work / "ws"
    images.mkdir(parents=True)
    ws.mkdir()
    paths = [f"img{i:02d}.png" for i in range(12)] + ["loop.png"]
    for p in paths[:-1]:
        Image.fromarray(np.full((8, 8, 3), 10, np.uint8)).save(images / p)
    os.symlink("loop.png", images / "loop.png")  # a symlink loop the store knows about
    (work / "secret.txt").write_text("outside the image root\n")
    os.symlink(work / "secret.txt", images / "out.png")
    with open_store(ws / "pixlabel.db") as store:
        store.sync_images([(p, f"hash-{p}", (8, 8)) for p in paths])
        store.ensure_classes(["cat", "dog"])
        store.put_labels([Label(p, "cat", 0.5, Provenance(source="model")) for p in paths])
    (ws / "config.yaml").write_text(f"images: {images}\n")
    return ws


def attack_review(work: Path, hold_s: float, slow_n: int) -> dict[str, Any]:
    ws = review_workspace(work)
    port = free_port()
    base = f"http://{HOST}:{port}"
    auth = {"Authorization": f"Bearer {REVIEW_SECRET}"}
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "review", str(ws), "--port", str(port),
           "--token", f"ana:{REVIEW_SECRET}"]
    a = Attacks()
    with server(cmd, base) as proc:
        monitor = RssMonitor(proc.pid)
        monitor.start()
        idle_rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        baseline = healthz_ms(base, 20)

        def write(body: bytes, headers: dict[str, str] | None = None) -> int:
            return httpx.post(f"{base}/api/labels", content=body, timeout=60,
                              headers={"Content-Type": "application/json", **(headers or {})}).status_code

        a.run("legit write", {200}, lambda: write(b'{"path": "img01.png", "label": "dog"}', auth), 3)
        a.run("reads without a token", {401}, lambda: httpx.get(f"{base}/api/labels.csv").status_code, 3)
        a.run("DNS-rebinding Host (with a valid token)", {400}, lambda: httpx.get(
            f"{base}/api/labels.csv", headers={**auth, "Host": "rebind.attacker.example:8765"}).status_code, 5)
        a.run("50 MB declared JSON body", {413}, lambda: raw_request(port, (
            f"POST /api/labels HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            "Content-Length: 52428800\r\n\r\n").encode(), repeat(800, b" " * 65536)), 3)
        a.run("chunked JSON body without Content-Length (up to 5 MB)", {413}, lambda: raw_request(port, (
            f"POST /api/labels HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {REVIEW_SECRET}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode(),
            repeat(80, b"10000\r\n" + b"[" * 65536 + b"\r\n")), 3)
        a.run("JSON nested 400,000 deep (800 KB, under the cap)", {400, 422},
              lambda: write(b"[" * 400_000 + b"]" * 400_000, auth), 3)
        odd = ["img00.png/x", "a" * 300 + ".png", "b" * 4000, "loop.png", "out.png", "..%2Fsecret.txt",
               "%2E%2E/%2E%2E/etc/passwd", "img00.png%00.png", "missing.png"]
        bodies: set[str] = set()

        def odd_path() -> int:
            r = httpx.get(f"{base}/img/{odd[len(bodies) % len(odd)]}", headers=auth)
            bodies.add(r.text)
            odd.append(odd.pop(0))
            return r.status_code

        a.run("traversal / overlong / symlink-loop / NUL image paths", {404}, odd_path, len(odd) * 2)
        slow_body = slowloris(  # a pause longer than BodyLimit's 20 s idle timeout
            base, port, n=slow_n, hold_s=hold_s, period=hold_s - 5,
            head=(f"POST /api/labels HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                  "Content-Length: 100000\r\n\r\n").encode(), trickle=b" " * 10)
        slow_headers = slowloris(base, port, n=slow_n, hold_s=hold_s, period=2.0,
                                 head=f"GET /api/queue HTTP/1.1\r\nHost: {HOST}\r\n".encode(),
                                 trickle=b"X-Slow: 1\r\n")
        a.requests += 2 * slow_n
        a.run("legit write after the attacks above", {200}, lambda: write(
            b'{"path": "img03.png", "label": "dog"}', auth), 2)
        a.run("token guessing (30 wrong tokens)", {401, 429},
              lambda: write(b'{"path": "img02.png", "label": "dog"}',
                            {"Authorization": f"Bearer guess-{time.perf_counter_ns()}-xxxxxxxx"}), 30)
        after = healthz_ms(base, 20)
        monitor.stop.set()
        monitor.join()
        rss_after = psutil.Process(proc.pid).memory_info().rss / 2**20
    return {"rows": a.rows, "requests": a.requests, "distinct_404_bodies": len(bodies),
            "healthz_baseline": summary(baseline), "healthz_after": summary(after),
            "slowloris_body": slow_body, "slowloris_headers": slow_headers, "rss_idle_mb": round(idle_rss, 1),
            "rss_peak_mb": round(monitor.peak_mb, 1), "rss_after_mb": round(rss_after, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold", type=float, default=30.0,
                    help="seconds each slowloris phase holds its connections (> 25: body pauses outlast the 20 s "
                         "idle timeout)")
    ap.add_argument("--slow-connections", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hostile_clients.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixlabel-hostile-") as tmp:
        print("pixlabel serve:", flush=True)
        serve = attack_serve(Path(tmp) / "serve", args.hold, args.slow_connections)
        print("pixlabel review:", flush=True)
        review = attack_review(Path(tmp) / "review", args.hold, args.slow_connections)
    verdict = {}
    for name, r in (("serve", serve), ("review", review)):
        verdict[name] = {
            "every_attack_answered_as_expected": all(row["ok"] for row in r["rows"]),
            "healthz_after_max_ms_below_100": r["healthz_after"]["max_ms"] < HEALTHZ_LIMIT_MS,
            "rss_peak_below_2GB": r["rss_peak_mb"] < RSS_LIMIT_MB,
        }
    out = {"serve": serve, "review": review, "verdict": verdict,
           "limits": {"healthz_ms": HEALTHZ_LIMIT_MS, "rss_mb": RSS_LIMIT_MB},
           "seconds": round(time.perf_counter() - t0, 1), "cpu_count": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(verdict, indent=2))
    for name, r in (("serve", serve), ("review", review)):
        print(f"{name}: healthz baseline {r['healthz_baseline']}, after {r['healthz_after']}, RSS idle "
              f"{r['rss_idle_mb']} MB peak {r['rss_peak_mb']} MB; requests {r['requests']}")


if __name__ == "__main__":
    main()
