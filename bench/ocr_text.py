"""OCR benchmark: text lines with known strings rendered on images in Debian's fonts; RapidOCR (what
``pixlabel label --task ocr`` uses) against Tesseract (Debian ``tesseract-ocr-eng``) in the same run.

    flock /tmp/cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/ocr_text.py [--images 80] [--seed 0]

Each image (360-560 x 200-320 px, a light background with noise or a gradient, sometimes blurred) holds 1-3
lines of 1-3 tokens (English words, numbers, codes such as ``A7-512``) in DejaVu Sans/Serif/Mono (fonts-dejavu)
or Liberation Sans/Serif (fonts-liberation) at 18-40 px. The ground-truth box is the line's ink box
(Pillow's ``textbbox``).

Metrics per engine: detection recall and precision at IoU >= 0.5 against the tight ink box (one-to-one, greedy
by IoU; a line split in two boxes is a miss there, and so is a box padded around small text, as PP-OCR's are);
centre recall = lines with at least one predicted box centred inside them; character accuracy = 1 - CER, where a
ground-truth line's transcript is every predicted box whose centre lies inside it, left to right, joined by
spaces (so split lines are read fairly, and a missed line has CER 1); exact-line accuracy; images per second.
For RapidOCR also how well its score tells right from wrong: the share of lines read exactly among those scored
>= 0.97 (pixlabel's default accept threshold) and the expected calibration error of score vs exact. Writes
bench/out/ocr_text.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pixlabel.detect.ocr import TextReader

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
]
WORDS = ("exit entrance parking station invoice total north street coffee market garden office library "
         "warning danger open closed monday delivery platform ticket museum harbour bakery pharmacy river "
         "Berlin London Toronto Sydney Lisbon Quebec Oslo Madrid").split()
ACCEPT = 0.97


@dataclass
class Line:
    text: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2


def token(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        word = rng.choice(WORDS)
        return word.upper() if rng.random() < 0.3 else word.capitalize() if rng.random() < 0.5 else word
    if kind < 0.8:
        return str(rng.randint(0, 99999))
    return f"{rng.choice('ABCDEFGHKMNPRSTXZ')}{rng.randint(1, 9)}-{rng.randint(100, 999)}"


def make_image(rng: random.Random) -> tuple[Image.Image, list[Line]]:
    w, h = rng.randint(360, 560), rng.randint(200, 320)
    base = np.array([rng.randint(200, 255) for _ in range(3)], np.float32)
    if rng.random() < 0.5:
        pixels = base + np.random.default_rng(rng.randint(0, 2**31)).normal(0, 8, (h, w, 3))
    else:
        ramp = np.linspace(-25, 25, w, dtype=np.float32)[None, :, None]
        pixels = np.broadcast_to(base, (h, w, 3)) + ramp
    im = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    lines: list[Line] = []
    y = rng.randint(8, 30)
    for _ in range(rng.randint(1, 3)):
        font = ImageFont.truetype(rng.choice(FONTS), rng.randint(18, 40))
        text = " ".join(token(rng) for _ in range(rng.randint(1, 3)))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left > w - 20 or y + bottom + 8 > h:
            break
        x = rng.randint(10, w - 10 - (right - left)) - left
        colour = tuple(rng.randint(0, 90) for _ in range(3))
        draw.text((x, y), text, fill=colour, font=font)
        lines.append(Line(text, (x + left, y + top, x + right, y + bottom)))
        y += bottom + rng.randint(12, 40)
    if rng.random() < 0.25:
        im = im.filter(ImageFilter.GaussianBlur(0.8))
    return im, lines


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def rapidocr_lines(reader: TextReader, image: Image.Image) -> list[tuple[str, tuple[float, ...], float]]:
    return [(t.text, t.xyxy, t.score) for t in reader.read(np.asarray(image))]


def tesseract_lines(path: Path) -> list[tuple[str, tuple[float, ...], float]]:
    tsv = subprocess.run(["tesseract", str(path), "stdout", "-l", "eng", "tsv"], capture_output=True, text=True,
                         check=True, env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"}).stdout
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) == 12 and cols[0] == "5" and cols[11].strip():
            groups.setdefault(tuple(cols[1:5]), []).append(cols)
    out = []
    for words in groups.values():
        x1 = min(int(c[6]) for c in words)
        y1 = min(int(c[7]) for c in words)
        x2 = max(int(c[6]) + int(c[8]) for c in words)
        y2 = max(int(c[7]) + int(c[9]) for c in words)
        out.append((" ".join(c[11] for c in words), (x1, y1, x2, y2), min(float(c[10]) for c in words) / 100))
    return out


def score_engine(truth: list[list[Line]], found: list[list[tuple[str, tuple[float, ...], float]]]
                 ) -> dict[str, Any]:
    n_true = sum(len(t) for t in truth)
    n_pred = sum(len(f) for f in found)
    matched, hit, cer_sum, exact = 0, 0, 0.0, 0
    scored: list[tuple[float, bool]] = []  # (score, read exactly) for lines read by exactly one box
    for lines, preds in zip(truth, found, strict=True):
        pairs = sorted(((iou(g.box, p[1]), i, j) for i, g in enumerate(lines) for j, p in enumerate(preds)),
                       reverse=True)
        used_g: set[int] = set()
        used_p: set[int] = set()
        for value, i, j in pairs:
            if value >= 0.5 and i not in used_g and j not in used_p:
                used_g.add(i)
                used_p.add(j)
                matched += 1
        for g in lines:
            inside = sorted((p for p in preds if g.box[0] <= (p[1][0] + p[1][2]) / 2 <= g.box[2]
                             and g.box[1] <= (p[1][1] + p[1][3]) / 2 <= g.box[3]), key=lambda p: p[1][0])
            hit += bool(inside)
            text = " ".join(p[0] for p in inside).strip()
            cer_sum += min(1.0, levenshtein(text, g.text) / len(g.text))
            exact += text == g.text
            if len(inside) == 1:
                scored.append((inside[0][2], text == g.text))
    out: dict[str, Any] = {
        "lines": n_true, "predicted_boxes": n_pred,
        "detection_recall_iou50": round(matched / n_true, 4),
        "detection_precision_iou50": round(matched / n_pred, 4) if n_pred else 0.0,
        "detection_recall_centre": round(hit / n_true, 4),
        "char_accuracy": round(1 - cer_sum / n_true, 4),
        "exact_line_accuracy": round(exact / n_true, 4),
    }
    if scored:
        s = np.array([v for v, _ in scored])
        ok = np.array([e for _, e in scored], float)
        bins = np.minimum((s * 10).astype(int), 9)
        ece = sum(abs(ok[bins == b].mean() - s[bins == b].mean()) * (bins == b).sum() for b in range(10)
                  if (bins == b).any()) / len(s)
        high = s >= ACCEPT
        out |= {"score_ece": round(float(ece), 4), f"lines_scored_ge_{ACCEPT}": int(high.sum()),
                f"exact_rate_scored_ge_{ACCEPT}": round(float(ok[high].mean()), 4) if high.any() else None,
                "exact_rate_all_scored": round(float(ok.mean()), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "ocr_text.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data = [make_image(rng) for _ in range(args.images)]
    truth = [lines for _, lines in data]
    results: dict[str, Any] = {}
    for name, max_side in (("rapidocr", None), ("rapidocr max_side=960", 960)):
        reader = TextReader(threads=2, max_side=max_side)
        reader.read(np.asarray(data[0][0]))  # load the models outside the timing
        t0 = time.perf_counter()
        found = [rapidocr_lines(reader, im) for im, _ in data]
        seconds = time.perf_counter() - t0
        results[name] = {"engine": reader.version, "max_side": max_side, **score_engine(truth, found),
                         "images_per_s": round(len(data) / seconds, 3)}
    if shutil.which("tesseract"):
        version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for n, (im, _) in enumerate(data):
                paths.append(Path(tmp) / f"{n}.png")
                im.save(paths[-1])
            t0 = time.perf_counter()
            found = [tesseract_lines(p) for p in paths]
            seconds = time.perf_counter() - t0
        results["tesseract"] = {"engine": version, **score_engine(truth, found),
                                "images_per_s": round(len(data) / seconds, 3)}
    report = {"images": args.images, "seed": args.seed, "lines": sum(len(t) for t in truth),
              "fonts": [Path(f).name for f in FONTS], "machine": platform.processor() or platform.machine(),
              "threads": 2, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    keys = ("detection_recall_iou50", "detection_precision_iou50", "detection_recall_centre", "char_accuracy",
            "exact_line_accuracy", "images_per_s")
    print("| engine | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
