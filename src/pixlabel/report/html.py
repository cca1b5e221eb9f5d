"""Render a labeling run's :class:`ReportData` as one self-contained HTML file.

Everything is inline (CSS, SVG charts, thumbnails as base64 PNG data URIs) so the file can be mailed or
opened offline. Jinja2 autoescaping is on: paths, class names and error reasons come from users' folders
and files, and a class called ``<script>`` must show up as text.
"""

from __future__ import annotations

import base64
import io
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from PIL import Image

from pixlabel.report import svg
from pixlabel.report.data import Example, ReportData

MAX_ERRORS = 200  # rows shown in the errors table; the rest are counted, they are all in errors.csv
_THUMB_PX = 96  # displayed thumbnail size; smaller thumbnails are upscaled with crisp pixels
_KINDS = ("human", "accepted", "review")  # the keys of ReportData.counts[class]
_RELIABILITY_KEYS = ("lo", "hi", "count", "mean_confidence", "accuracy")


def render_report(data: ReportData, path: Path) -> None:
    """Write the report for ``data`` to ``path`` (parent folders are created).

    >>> render_report(data, Path("workspace/report.html"))  # doctest: +SKIP
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(data), encoding="utf-8")


def report_html(data: ReportData) -> str:
    """The report as an HTML string (what :func:`render_report` writes).

    >>> report_html(data).startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
    """
    confidence = _confidences(data.model_confidence)
    for i, row in enumerate(data.reliability):
        missing = [k for k in _RELIABILITY_KEYS if k not in row]
        if missing:
            raise ValueError(
                f"reliability bin {i}: missing keys {missing}; expected {list(_RELIABILITY_KEYS)}"
            )
    extra_classes = sorted(set(data.samples) - set(data.classes))
    sample_classes = [c for c in data.classes if c in data.samples] + extra_classes
    context: dict[str, Any] = {
        "d": data,
        "threshold_text": format_threshold(data.threshold),
        "totals": {k: sum(c.get(k, 0) for c in data.counts.values()) for k in _KINDS},
        "n_model": int(confidence.shape[0]),
        "class_rows": _class_rows(data),
        "histogram": svg.confidence_histogram(confidence, threshold=data.threshold),
        "reliability_svg": svg.reliability_diagram(data.reliability) if data.reliability else None,
        "samples": [(c, [_example(e) for e in data.samples[c]]) for c in sample_classes],
        "review": [_example(e) for e in data.review_preview],
        "flagged": [_example(e) for e in data.flagged_seeds],
        "errors_shown": data.errors[:MAX_ERRORS],
        "errors_more": max(0, len(data.errors) - MAX_ERRORS),
        "total_seconds": sum(data.timings.values()),
        "thumb_px": _THUMB_PX,
        "chart_width": svg.WIDTH,
    }
    return _environment().get_template("report.html").render(context)


def format_threshold(threshold: float) -> str:
    """The threshold as shown in the report; above 1 means no threshold met the target.

    >>> format_threshold(0.93), format_threshold(1.5)
    ('0.930', 'none met')
    """
    return f"{threshold:.3f}" if threshold <= 1.0 else "none met"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pixlabel", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly instead of rendering ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, seconds=_seconds, value=_value)
    return env


def _confidences(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"model_confidence: expected a 1-D array of shape (M,), got shape {arr.shape}")
    if arr.size and not (np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError(
            f"model_confidence: expected finite values in [0, 1], got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def _class_rows(data: ReportData) -> list[dict[str, Any]]:
    names = list(data.classes) + sorted(set(data.counts) - set(data.classes))
    counts = {name: [int(data.counts.get(name, {}).get(k, 0)) for k in _KINDS] for name in names}
    widest = max((sum(c) for c in counts.values()), default=0) or 1
    # Bar segment widths are % of the widest class, so bars compare across rows.
    return [
        {"name": name}
        | dict(zip(_KINDS, c, strict=True))
        | {f"w_{k}": 100.0 * n / widest for k, n in zip(_KINDS, c, strict=True)}
        for name, c in counts.items()
    ]


def _example(e: Example) -> dict[str, Any]:
    thumb = np.asarray(e.thumb)
    channels_ok = thumb.ndim == 2 or (thumb.ndim == 3 and thumb.shape[2] in (1, 3, 4))
    if thumb.dtype != np.uint8 or not channels_ok:
        raise ValueError(
            f"thumbnail of {e.path}: expected a uint8 array (t, t, 3), got {thumb.dtype} shape {thumb.shape}"
        )
    if thumb.ndim == 3 and thumb.shape[2] == 1:
        thumb = thumb[:, :, 0]  # PIL wants (t, t) for grey
    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format="PNG")
    return {
        "path": e.path,
        "label": e.label,
        "confidence": e.confidence,
        "note": e.note,
        "src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
        "tiny": max(thumb.shape[:2]) < _THUMB_PX,
    }


def _pct(x: float, digits: int = 1, missing: str = "n/a") -> str:
    """A fraction as a percentage; ``missing`` (words, never ``nan``) when it was not measured."""
    return missing if x is None or math.isnan(x) else f"{100.0 * x:.{digits}f}%"


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes} min {rest:02d} s"


def _value(x: float) -> str:
    """``truth`` entries mix counts and fractions: counts print as integers, the rest with 4 digits."""
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"
