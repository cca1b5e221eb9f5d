"""Inline SVG charts for the HTML report.

Plain markup built from numbers, no plotting library: the report must stay one file that opens offline,
and two bar charts do not justify matplotlib. Every text node goes through ``escape`` although today it
only ever holds numbers and fixed words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape
from numpy.typing import NDArray

WIDTH, HEIGHT = 520, 260
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 16, 32, 44
_X_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class _Frame:
    """The plot area in pixels; maps data x in [0, 1] and y in [0, y_max] onto it (y grows upwards)."""

    y_max: float
    left: float = _MARGIN_LEFT
    top: float = _MARGIN_TOP
    width: float = WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    height: float = HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def x(self, v: float) -> float:
        return self.left + min(max(v, 0.0), 1.0) * self.width

    def y(self, v: float) -> float:
        return self.bottom - (v / self.y_max) * self.height


def nice_ticks(v_max: float, *, at_most: int = 6, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``v_max`` (steps of 1, 2 or 5 times a power of ten);
    ``integer`` keeps the step at 1 or more, for counts.

    >>> nice_ticks(37), nice_ticks(1, integer=True)
    ([0, 10, 20, 30, 40], [0, 1])
    """
    if v_max <= 0:
        return [0, 1]
    raw = v_max / (at_most - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if step >= 1 or integer:
        step = max(1, round(step))  # integer counts get integer ticks, not "10.0"
    n = math.ceil(v_max / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _line(css_class: str, x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line class="{css_class}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'


def _text(
    x: float, y: float, content: str, *, css_class: str = "", anchor: str = "middle", extra: str = ""
) -> str:
    cls = f' class="{css_class}"' if css_class else ""
    return f'<text{cls} x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def _axes(frame: _Frame, y_ticks: Sequence[float], *, x_label: str, y_label: str) -> list[str]:
    right = frame.left + frame.width
    parts = [_line("axis", frame.left, frame.bottom, right, frame.bottom)]
    parts.append(_line("axis", frame.left, frame.top, frame.left, frame.bottom))
    for t in _X_TICKS:
        x = frame.x(t)
        parts.append(_line("tick", x, frame.bottom, x, frame.bottom + 4))
        parts.append(_text(x, frame.bottom + 16, f"{t:g}"))
    for t in y_ticks:
        y = frame.y(t)
        parts.append(_line("grid", frame.left, y, right, y))
        parts.append(_text(frame.left - 6, y + 4, f"{t:g}", anchor="end"))
    parts.append(_text(frame.left + frame.width / 2, HEIGHT - 6, x_label, css_class="label"))
    cy = frame.top + frame.height / 2
    parts.append(_text(14, cy, y_label, css_class="label", extra=f' transform="rotate(-90 14 {cy:.1f})"'))
    return parts


def _svg(parts: Sequence[str], *, css_class: str, title: str) -> Markup:
    body = "\n".join(parts)
    return Markup(
        f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>\n{body}\n</svg>"
    )


def confidence_histogram(confidence: NDArray[np.float64], *, threshold: float, bins: int = 20) -> Markup:
    """A histogram of confidences in [0, 1] with ``bins`` bars (one ``rect.hist-bar`` each, empty ones
    with zero height) and the accept threshold as a dashed line; a threshold above 1 accepts nothing and
    is drawn at the right edge.

    >>> str(confidence_histogram(np.array([0.2, 0.95]), threshold=0.9)).count('<rect class="hist-bar')
    20
    """
    counts, edges = np.histogram(confidence, bins=bins, range=(0.0, 1.0))
    ticks = nice_ticks(float(counts.max()), integer=True)
    frame = _Frame(y_max=float(ticks[-1]))
    parts = _axes(frame, ticks, x_label="calibrated confidence of model labels", y_label="labels")
    for count, lo, hi in zip(counts.tolist(), edges[:-1], edges[1:], strict=True):
        x0, x1 = frame.x(lo) + 1, frame.x(hi) - 1
        y = frame.y(count)
        state = "accepted" if lo >= threshold else "review"
        parts.append(
            f'<rect class="hist-bar {state}" x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" '
            f'height="{frame.bottom - y:.1f}"><title>{lo:.2f}–{hi:.2f}: {count} labels</title></rect>'
        )
        if count:
            parts.append(_text((x0 + x1) / 2, y - 3, str(count), css_class="count"))
    met = threshold <= 1.0  # False for ACCEPT_NOTHING (just above 1) and for nan
    x = frame.x(threshold if met else 1.0)
    text = f"threshold {threshold:.3f}" if met else "no threshold met"
    anchor = "end" if x > frame.left + frame.width / 2 else "start"
    dx = -4 if anchor == "end" else 4
    parts.append(_line("threshold", x, frame.top - 14, x, frame.bottom))
    parts.append(_text(x + dx, frame.top - 18, text, css_class="threshold-label", anchor=anchor))
    return _svg(parts, css_class="histogram", title="Confidence histogram of model labels")


def reliability_diagram(rows: Sequence[Mapping[str, float]]) -> Markup:
    """Accuracy per confidence bin (one ``rect.rel-bar`` per row, spanning ``[lo, hi)``) against the
    diagonal of perfect calibration; each bar's ``<title>`` gives its count.

    >>> row = dict(lo=0.8, hi=0.9, count=5, mean_confidence=0.85, accuracy=0.8)
    >>> str(reliability_diagram([row])).count('class="rel-bar"')
    1
    """
    frame = _Frame(y_max=1.0)
    parts = _axes(frame, _X_TICKS, x_label="confidence (held-out seeds)", y_label="accuracy")
    parts.append(_line("diagonal", frame.x(0), frame.y(0), frame.x(1), frame.y(1)))
    for r in rows:
        x0, x1 = frame.x(r["lo"]) + 1, frame.x(r["hi"]) - 1
        y = frame.y(r["accuracy"])
        n = int(r["count"])
        tip = (
            f"{r['lo']:.2f}–{r['hi']:.2f}: {n} seeds, accuracy {r['accuracy']:.0%}, "
            f"mean confidence {r['mean_confidence']:.0%}"
        )
        parts.append(
            f'<rect class="rel-bar" x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" '
            f'height="{frame.bottom - y:.1f}"><title>{escape(tip)}</title></rect>'
        )
        # Where the model's own confidence sits in the bin: the gap to the bar top is the miscalibration.
        parts.append(
            f'<circle class="mean-conf" cx="{frame.x(r["mean_confidence"]):.1f}" '
            f'cy="{frame.y(r["mean_confidence"]):.1f}" r="3"><title>{escape(tip)}</title></circle>'
        )
        # Count at the foot of the bar, clear of the bar top where the mean-confidence dot sits.
        inside = frame.bottom - y >= 14
        y_text, css = (frame.bottom - 4, "count inside") if inside else (y - 3, "count")
        parts.append(_text((x0 + x1) / 2, y_text, str(n), css_class=css))
    return _svg(parts, css_class="reliability", title="Reliability diagram on held-out seeds")
