"""Review app speed with 100k images in the store: /api/queue?limit=50 and the page, p50/p95 over real HTTP.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/review_speed.py            # SQLite, 100k labels
    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/review_speed.py --db postgresql://u:pw@host/db
    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/review_speed.py --boxes   # 100k boxes (issue 19)

The store is filled through the store API (sync_images + put_labels, the path `pixlabel label` takes), then
uvicorn serves the app on 127.0.0.1 and httpx measures wall time per request from the client side.
Targets (issue 6): queue < 100 ms, page < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from pixlabel.records import Label, Provenance
from pixlabel.review import ReviewSettings, create_app
from pixlabel.store import LabelStore, open_store

CLASSES = [f"class{k}" for k in range(10)]


def fill(store: LabelStore, n: int, *, seed: int = 0) -> float:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    paths = [f"images/{i:06d}.png" for i in range(n)]
    store.sync_images([(p, f"hash{i}", (28, 28)) for i, p in enumerate(paths)])
    store.ensure_classes(CLASSES)
    conf = rng.beta(5, 1.5, n)  # most labels confident, a long tail of doubtful ones (like a real run)
    cls = rng.integers(0, len(CLASSES), n)
    store.put_labels([Label(p, CLASSES[c], float(x), Provenance(source="model", labeler="poisson"),
                            status="accepted" if x >= 0.9 else "review")
                      for p, c, x in zip(paths, cls, conf, strict=True)])
    # some human corrections already, as after a while of reviewing
    for i in rng.choice(n, 200, replace=False):
        store.set_human_label(paths[i], CLASSES[int(cls[i])], actor="ana")
    return time.perf_counter() - t0


def fill_boxes(store: LabelStore, n: int, *, seed: int = 0) -> float:
    """``n`` model boxes (rank 0) on n/4 images of 160 px, one ranked alternative per image, 200 reviewer boxes."""
    from pixlabel.records import Box

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_img = n // 4
    paths = [f"images/{i:06d}.png" for i in range(n_img)]
    store.sync_images([(p, f"hash{i}", (160, 160)) for i, p in enumerate(paths)])
    store.ensure_classes(CLASSES)
    conf = rng.beta(2, 2, n)
    cls = rng.integers(0, len(CLASSES), n)
    xy = rng.uniform(0, 100, (n, 2))
    prov = Provenance(source="model", labeler="teacher-student-fcos")
    labels = [Label(paths[i // 4], CLASSES[c], float(x), prov, status="accepted" if x >= 0.9 else "review",
                    box=Box(a, b, a + 40, b + 40, image_size=(160, 160)))
              for i, (c, x, (a, b)) in enumerate(zip(cls, conf, xy, strict=True))]
    labels += [Label(p, CLASSES[0], 0.05, prov, status="review", rank=1,
                     box=Box(1, 1, 30, 30, image_size=(160, 160))) for p in paths]
    store.put_labels(labels)
    for i in rng.choice(n_img, 200, replace=False):
        store.add_box(paths[i], CLASSES[0], (120, 120, 30, 30), actor="ana")
    return time.perf_counter() - t0


def timed(http: httpx.Client, url: str, params: dict[str, object], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = http.get(url, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "max_ms": round(times[-1], 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--boxes", action="store_true", help="a detection workspace: --n boxes, 4 per image")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pixlabel-review-speed-"))
    store = open_store(args.db or work / "pixlabel.db")
    args.out = args.out or Path(f"bench/out/review_speed{'_boxes' if args.boxes else ''}.json")
    fill_s = (fill_boxes if args.boxes else fill)(store, args.n)
    print(f"filled {args.n} labels in {fill_s:.1f} s ({store.url})", file=sys.stderr)
    settings = ReviewSettings(work, {"secret": "bench"}, open_reads=True)  # reads need a token by default
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    with httpx.Client(base_url=base, timeout=60) as http:
        deep = http.get("/api/queue", params={"limit": 1000}).json()["next_cursor"]  # 1000 rows in
        for _ in range(5):  # warm-up: connection, caches, templates
            http.get("/api/queue", params={"limit": 50})
            http.get("/", follow_redirects=True)
        cases = {
            "queue limit=50": ("/api/queue", {"limit": 50}),
            "queue limit=50, next page by cursor (after 1000)": ("/api/queue", {"limit": 50, "after": deep}),
            "queue limit=50, class filter": ("/api/queue", {"limit": 50, "label": "class3"}),
            "queue limit=50, status=review": ("/api/queue", {"limit": 50, "status": "review"}),
            "queue limit=50, source=human": ("/api/queue", {"limit": 50, "source": "human"}),
            "queue limit=50, offset=50000": ("/api/queue", {"limit": 50, "offset": 50_000}),
            "page (60 cards + progress)": ("/", {}),
            "page, class + status filter": ("/", {"label": "class3", "status": "review"}),
            "progress": ("/api/progress", {}),
        }
        if args.boxes:
            cases = {k: v for k, v in cases.items() if k.startswith("queue")}
            cases.update({"box page (60 boxes of their images, drawn)": ("/boxes", {}),
                          "box page, class + status filter": ("/boxes", {"label": "class3", "status": "review"}),
                          "box progress": ("/api/box_progress", {}),
                          "boxes of one image": ("/api/boxes", {"path": "images/000007.png"})})
        results = {name: timed(http, url, params, args.repeats) for name, (url, params) in cases.items()}
        t0 = time.perf_counter()
        csv_bytes = len(http.get("/api/labels.csv").content)
        export_s = time.perf_counter() - t0
    server.should_exit = True
    thread.join(timeout=10)
    store.close()

    out = {"labels": args.n, "kind": "boxes" if args.boxes else "class labels",
           "backend": "postgresql" if args.db else "sqlite", "fill_s": round(fill_s, 1),
           "repeats": args.repeats, "results": results,
           "labels_csv": {"seconds": round(export_s, 2), "bytes": csv_bytes},
           "targets": {"queue_ms": 100, "page_ms": 300}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:55s} p50 {r['p50_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms")
    print(f"labels.csv export: {export_s:.2f} s, {csv_bytes} bytes")


if __name__ == "__main__":
    main()
