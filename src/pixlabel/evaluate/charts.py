"""Small inline-SVG charts and a one-file HTML page for the train and eval reports (no plotting library,
the reports open offline). Reuses :func:`pixlabel.report.svg.reliability_diagram` for calibration.

>>> "<polyline" in str(line_chart({"train": [(1, 0.5), (2, 0.4)]}, title="loss", y_label="loss"))
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # matplotlib tab10: ten classes, ten colours
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
svg text{font-size:11px;fill:#333}.axis line,.axis path{stroke:#888}
.diagonal{stroke:#999;stroke-dasharray:4 3}.rel-bar{fill:#8fb8de}.mean-conf{fill:#d62728}
.gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;width:120px;font-size:11px}
.gallery img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #ccc}
"""


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, x_label: str = "epoch",
               y_label: str = "", width: int = 520, height: int = 260, x_range: tuple[float, float] | None = None,
               y_range: tuple[float, float] | None = None) -> Markup:
    """One polyline per series on shared axes, with a legend; axes fit the data unless ``x_range``/``y_range``
    fix them (e.g. ``(0, 1)`` for precision–recall curves)."""
    pts = [(x, y) for s in series.values() for x, y in s if math.isfinite(y)]
    if not pts:
        return Markup("<p>(no data)</p>")
    left, right, top, bottom = 56, 110, 24, 40
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = x_range or (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    y0, y1 = y_range or (min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1)
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for v in np.linspace(y0, y1, 5):
        parts.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for v in np.linspace(x0, x1, 6 if x_range else min(6, int(x1 - x0) + 1)):  # epochs: whole-number ticks
        parts.append(f'<text x="{sx(v):.1f}" y="{top + ph + 16}" text-anchor="middle">{_fmt(v)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, s) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        good = [(x, y) for x, y in s if math.isfinite(y)]
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
        ly = top + 14 + 16 * i
        parts.append(f'<line x1="{left + pw + 8}" y1="{ly - 4}" x2="{left + pw + 24}" y2="{ly - 4}" '
                     f'stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + pw + 28}" y="{ly}">{escape(name)}</text>')
    return _svg(parts, width, height, title)


def heatmap(matrix: np.ndarray, labels: Sequence[str], *, title: str = "Confusion matrix",
            cell: int = 34) -> Markup:
    """Rows = true class, columns = predicted class; colour by row-normalised share, count in each cell."""
    k = len(labels)
    m = np.asarray(matrix, dtype=np.float64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    left, top = 110, 100
    size_w, size_h = left + cell * k + 10, top + cell * k + 30
    parts = []
    for j, name in enumerate(labels):
        x = left + cell * j + cell / 2
        parts.append(f'<text x="{x:.1f}" y="{top - 6}" transform="rotate(-60 {x:.1f} {top - 6})">'
                     f'{escape(name)}</text>')
    for i, name in enumerate(labels):
        y = top + cell * i
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{escape(name)}</text>')
        for j in range(k):
            v = share[i, j]
            color = f"rgb({int(255 - 200 * v)},{int(255 - 140 * v)},255)" if i == j else \
                f"rgb(255,{int(255 - 200 * v)},{int(255 - 200 * v)})"
            parts.append(f'<rect x="{left + cell * j}" y="{y}" width="{cell}" height="{cell}" fill="{color}" '
                         f'stroke="#fff"><title>true {escape(name)} → predicted {escape(labels[j])}: '
                         f'{int(m[i, j])} ({v:.1%})</title></rect>')
            if m[i, j]:
                parts.append(f'<text x="{left + cell * j + cell / 2}" y="{y + cell / 2 + 4}" '
                             f'text-anchor="middle">{int(m[i, j])}</text>')
    parts.append(f'<text x="{left + cell * k / 2}" y="{size_h - 8}" text-anchor="middle">'
                 f'predicted class (rows: true class)</text>')
    return _svg(parts, size_w, size_h, title)


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str,
                 height: int = 260) -> Markup:
    """Bars in [0, 1] per category, one colour per series (e.g. precision/recall/F1 per class)."""
    n, m = len(categories), len(series)
    group = max(12 * m + 10, 40)
    left, top, bottom = 40, 24, 90
    width = left + group * n + 120
    ph = height - top - bottom
    parts = []
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + (1 - v) * ph
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + group * n}" y2="{y}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end">{v:g}</text>')
    for c, cat in enumerate(categories):
        gx = left + group * c + 5
        for s, (name, values) in enumerate(series.items()):
            v = float(values[c])
            h = max(0.0, min(v, 1.0)) * ph
            parts.append(f'<rect x="{gx + 12 * s}" y="{top + ph - h:.1f}" width="10" height="{h:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(cat)} {escape(name)}: {v:.3f}'
                         f'</title></rect>')
        x = gx + 6 * m
        parts.append(f'<text x="{x}" y="{top + ph + 12}" transform="rotate(45 {x} {top + ph + 12})">'
                     f'{escape(cat)}</text>')
    for s, name in enumerate(series):
        ly = top + 14 + 16 * s
        parts.append(f'<rect x="{left + group * n + 10}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{PALETTE[s % len(PALETTE)]}"/><text x="{left + group * n + 24}" y="{ly}">'
                     f'{escape(name)}</text>')
    return _svg(parts, width, height, title)


def _svg(parts: Sequence[str], width: float, height: float, title: str) -> Markup:
    body = "".join(parts)
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                  f'viewBox="0 0 {width:.0f} {height:.0f}" role="img"><title>{escape(title)}</title>{body}</svg>')


def page(title: str, sections: Sequence[tuple[str, Markup | str]]) -> str:
    """A self-contained HTML document; section bodies are Markup (trusted) or text (escaped)."""
    body = "".join(f"<h2>{escape(h)}</h2>{escape(b)}" for h, b in sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Markup:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(c))}</td>" for c in r) + "</tr>" for r in rows)
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _cell(c: object) -> str:
    if c is None:  # a metric that does not exist, e.g. the AP of a class with no truth
        return "–"
    if isinstance(c, float):
        return "–" if math.isnan(c) else f"{c:.4g}"
    return str(c)
