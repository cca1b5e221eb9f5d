"""``report.html`` of a generate run: quality metrics, a sample grid per class beside real images, and the
training losses. One self-contained file (images inline as base64 PNG); every user string is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixlabel.generate.data import LabeledImages
from pixlabel.generate.quality import Quality
from pixlabel.io.csvout import write_atomically

GRID_COLS = 10
GRID_ROWS = 4  # synthetic rows per class; one more row shows real images
CELL_PX = 48


def image_grid(rows: list[np.ndarray], *, cols: int = GRID_COLS, cell: int = CELL_PX) -> Image.Image:
    """Rows of (n, C, S, S) uint8 images -> one PIL grid, nearest-neighbour upscaled so pixels stay crisp."""
    grid = Image.new("RGB", (cols * cell + (cols - 1) * 2, len(rows) * cell + (len(rows) - 1) * 2), "white")
    for r, imgs in enumerate(rows):
        for c, img in enumerate(imgs[:cols]):
            pil = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).convert("RGB")
            grid.paste(pil.resize((cell, cell), Image.Resampling.NEAREST), (c * (cell + 2), r * (cell + 2)))
    return grid


def _data_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pct(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _num(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def report_html(*, data: LabeledImages, eval_x: np.ndarray, eval_y: np.ndarray, quality: Quality,
                summary: dict[str, Any]) -> str:
    e = html.escape
    counts = summary["counts"]
    real_counts = summary["real_counts"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>pixlabel generate report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
        "td:first-child,th:first-child{text-align:left}.cls{margin:1.5em 0}.note{color:#555}</style></head><body>",
        "<h1>Synthetic images</h1>",
        f"<p>GAN steps: {summary['step']} (resumed from step {summary['resumed_from']}); training "
        f"{summary['train_seconds']} s, whole run {summary['total_seconds']} s. Images written: "
        f"{sum(counts.values())}.</p>",
        "<h2>Quality</h2><table><tr><th>metric</th><th>value</th><th>what it means</th></tr>",
        f"<tr><td>FID (backbone features)</td><td>{_num(quality.fid)}</td><td>lower is closer to the real "
        f"images; comparable only between pixlabel runs with the same backbone</td></tr>",
        f"<tr><td>class fidelity</td><td>{_pct(quality.fidelity)}</td><td>synthetic images a classifier trained "
        f"on real images assigns to the intended class (its accuracy on held-out real images: "
        f"{_pct(quality.fidelity_ceiling)})</td></tr>",
        f"<tr><td>lowest per-class diversity</td><td>{_pct(quality.min_diversity)}</td><td>mean pairwise feature "
        f"distance among synthetic images relative to real ones; far below 100% means mode collapse</td></tr>",
        f"<tr><td>CAS</td><td>{_pct(quality.cas)}</td><td>accuracy on held-out real images of a classifier trained "
        f"only on synthetic images (the real-trained one gets {_pct(quality.fidelity_ceiling)})</td></tr>",
        "</table>",
        f"<p class='note'>Measured on {quality.n_fake} synthetic images drawn for evaluation "
        f"({len(data.classes)} classes) against {quality.n_real} real images. labels.csv confidence = the "
        "fidelity classifier's probability of the intended class.</p>",
        "<h2>Per class</h2><table><tr><th>class</th><th>real images</th><th>generated</th><th>fidelity</th>"
        "<th>mean confidence</th><th>diversity vs real</th></tr>",
    ]
    for name in data.classes:
        pc = quality.per_class.get(name, {})
        parts.append(f"<tr><td>{e(name)}</td><td>{real_counts.get(name, 0)}</td><td>{counts.get(name, 0)}</td>"
                     f"<td>{_pct(pc.get('fidelity', float('nan')))}</td>"
                     f"<td>{_num(pc.get('mean_confidence', float('nan')))}</td>"
                     f"<td>{_pct(pc.get('diversity', float('nan')))}</td></tr>")
    parts.append("</table><h2>Samples</h2><p class='note'>Per class: synthetic rows, then a row of real images "
                 "(bottom) for comparison.</p>")
    rng = np.random.default_rng(0)
    for k, name in enumerate(data.classes):
        fake = eval_x[eval_y == k][: GRID_COLS * GRID_ROWS]
        real_idx = np.flatnonzero(data.labels == k)
        real = data.images[rng.choice(real_idx, min(GRID_COLS, len(real_idx)), replace=False)]
        rows = [fake[i:i + GRID_COLS] for i in range(0, len(fake), GRID_COLS)] + [real]
        parts.append(f"<div class='cls'><h3>{e(name)}</h3><img alt='samples of {e(name)}' "
                     f"src='{_data_uri(image_grid(rows))}'></div>")
    hist = summary.get("history") or []
    if hist:
        parts.append("<h2>Training losses</h2><table><tr><th>step</th><th>D hinge loss</th><th>G loss</th></tr>")
        for h in hist[:: max(1, len(hist) // 15)]:
            parts.append(f"<tr><td>{int(h['step'])}</td><td>{h['loss_d']:.3f}</td><td>{h['loss_g']:.3f}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, **kwargs: Any) -> None:
    write_atomically(path, report_html(**kwargs))
