"""The HTML run report: one offline file, escaped user text, embedded thumbnails, correct SVG charts."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.report.data import Example, ReportData
from pixlabel.report.html import MAX_ERRORS, render_report
from pixlabel.trust.threshold import ACCEPT_NOTHING

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"


def _thumb(seed: int, t: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, t, 3), dtype=np.uint8)


def _example(i: int, label: str, confidence: float, note: str = "") -> Example:
    return Example(
        path=f"imgs/{label}/{i}.png", label=label, confidence=confidence, thumb=_thumb(i), note=note
    )


def _reliability(rng: np.random.Generator, n_bins: int) -> list[dict[str, float]]:
    rows = []
    for b in range(15 - n_bins, 15):
        lo, hi = b / 15, (b + 1) / 15
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "count": int(rng.integers(1, 30)),
                "mean_confidence": (lo + hi) / 2,
                "accuracy": float(rng.uniform(0.3, 1.0)),
            }
        )
    return rows


def _data(**changes: object) -> ReportData:
    rng = np.random.default_rng(7)
    classes = ["shirt", "trouser", "bag"]
    data = ReportData(
        title="demo run",
        images_root="/data/images",
        workspace="/data/ws",
        classes=classes,
        counts={
            c: {"human": 3, "accepted": int(rng.integers(10, 90)), "review": int(rng.integers(0, 20))}
            for c in classes
        },
        model_confidence=rng.beta(6, 1.5, size=int(rng.integers(200, 400))),
        reliability=_reliability(rng, 6),
        ece_heldout=0.0412,
        target_precision=0.95,
        threshold=0.8772,
        expected_precision=0.962,
        coverage=0.58,
        method="poisson",
        cv_accuracy={"poisson": 0.81, "knn": float("nan")},
        timings={"embed": 12.5, "fit": 0.4},
        samples={
            c: [_example(10 * k + i, c, 0.9 + 0.01 * i) for i in range(3)] for k, c in enumerate(classes)
        },
        review_preview=[_example(100 + i, classes[i % 3], 0.2 + 0.1 * i) for i in range(4)],
        flagged_seeds=[_example(200, "bag", 0.1, note="seed says 'bag', model says 'shirt'")],
        errors=[(f"/data/images/broken_{i}.jpg", "cannot identify image file") for i in range(3)],
        notes=["calibration: temperature scaling"],
        truth={"accuracy": 0.8731, "wrong_accepted": 4.0},
    )
    return replace(data, **changes)


def _render(tmp_path: Path, data: ReportData) -> str:
    out = tmp_path / "sub" / "report.html"
    render_report(data, out)
    assert out.is_file()
    return out.read_text(encoding="utf-8")


def _chart(html: str, kind: str) -> ET.Element:
    """The chart's <svg> parsed as XML (which also proves it is well-formed)."""
    match = re.search(rf'<svg class="chart {kind}".*?</svg>', html, flags=re.S)
    assert match is not None, f"no {kind} chart"
    return ET.fromstring(match.group(0))


def _rects(svg: ET.Element, css_class: str) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if css_class in r.get("class", "").split()]


def test_report_is_one_offline_file_with_the_run_facts(tmp_path: Path) -> None:
    data = _data()
    html = _render(tmp_path, data)
    assert html.startswith("<!DOCTYPE html>")
    for name in data.classes:
        assert f"<td>{name}</td>" in html
    assert "0.877" in html  # the threshold, 3 decimals
    assert "95.0%" in html and "96.2%" in html and "4.1%" in html  # target, expected precision, ECE
    assert "0.8731" in html and "wrong_accepted" in html  # demo truth entries
    assert "poisson (chosen)" in html and "not measured" in html and not re.search(r"\bnan\b", html)  # nan CV
    # Nothing fetched from the network: the only URL is the SVG namespace name, which is never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_thumbnails_are_embedded_pngs_that_decode_to_the_original_pixels(tmp_path: Path) -> None:
    data = _data()
    html = _render(tmp_path, data)
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    expected = sum(len(v) for v in data.samples.values()) + len(data.review_preview) + len(data.flagged_seeds)
    assert len(uris) == expected
    first = Image.open(io.BytesIO(base64.b64decode(uris[0])))
    assert first.format == "PNG"
    np.testing.assert_array_equal(np.asarray(first.convert("RGB")), data.samples["shirt"][0].thumb)
    assert 'class="pixelated"' in html  # 12 px thumbnails are upscaled with crisp pixels


def test_confidence_histogram_has_20_bars_that_count_every_label(tmp_path: Path) -> None:
    data = _data()
    svg = _chart(_render(tmp_path, data), "histogram")
    bars = _rects(svg, "hist-bar")
    assert len(bars) == 20
    counts = [int(re.search(r": (\d+) labels", b.findtext(f"{SVG}title", "")).group(1)) for b in bars]  # type: ignore[union-attr]
    assert sum(counts) == len(data.model_confidence)
    # The tallest bar is the biggest bin: bar heights are proportional to the counts.
    heights = [float(b.get("height", "0")) for b in bars]
    assert int(np.argmax(heights)) == int(np.argmax(counts))
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "threshold-label"]
    assert labels == ["threshold 0.877"]
    assert all(
        "accepted" in b.get("class", "")
        for b, lo in zip(bars, np.arange(20) / 20, strict=True)
        if lo >= 0.8772
    )


def test_reliability_diagram_has_one_bar_per_bin_with_counts_in_tooltips(tmp_path: Path) -> None:
    data = _data()
    svg = _chart(_render(tmp_path, data), "reliability")
    bars = _rects(svg, "rel-bar")
    assert len(bars) == len(data.reliability)
    for bar, row in zip(bars, data.reliability, strict=True):
        assert f"{row['count']} seeds" in bar.findtext(f"{SVG}title", "")
    assert any(line.get("class") == "diagonal" for line in svg.iter(f"{SVG}line"))
    # A bar of accuracy 1 is twice as tall as one of accuracy 0.5 (same axis): check proportionality.
    ratio = [float(b.get("height", "0")) / r["accuracy"] for b, r in zip(bars, data.reliability, strict=True)]
    assert max(ratio) - min(ratio) < 0.5


def test_empty_reliability_says_too_few_held_out_seeds(tmp_path: Path) -> None:
    html = _render(tmp_path, _data(reliability=[], ece_heldout=float("nan")))
    assert "too few held-out seeds" in html
    assert 'class="chart reliability"' not in html


def test_user_text_is_escaped(tmp_path: Path) -> None:
    data = _data(
        title=HOSTILE,
        classes=["shirt", HOSTILE],
        counts={
            "shirt": {"human": 1, "accepted": 2, "review": 0},
            HOSTILE: {"human": 1, "accepted": 0, "review": 5},
        },
        samples={HOSTILE: [_example(1, HOSTILE, 0.99, note=HOSTILE)]},
        errors=[(f"/imgs/{HOSTILE}.png", HOSTILE)],
        notes=[HOSTILE],
    )
    html = _render(tmp_path, data)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_errors_table_shows_the_first_200_and_counts_the_rest(tmp_path: Path) -> None:
    errors = [(f"/imgs/bad_{i}.jpg", "truncated file") for i in range(MAX_ERRORS + 37)]
    html = _render(tmp_path, _data(errors=errors))
    assert html.count('<td class="path">') == MAX_ERRORS
    assert f"bad_{MAX_ERRORS - 1}.jpg" in html and f"bad_{MAX_ERRORS}.jpg" not in html
    assert "and 37 more" in html
    few = _render(tmp_path, _data())
    assert few.count('<td class="path">') == 3 and "more" not in few.split("<h2>Errors</h2>")[1]


def test_threshold_that_accepts_nothing_is_shown_as_none_met(tmp_path: Path) -> None:
    html = _render(tmp_path, _data(threshold=ACCEPT_NOTHING, expected_precision=float("nan")))
    assert "none met" in html and "no threshold met" in html


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_confidence": np.array([0.5, 1.5])}, "model_confidence"),
        (
            {"review_preview": [Example("imgs/odd.png", "bag", 0.3, np.zeros((8, 8, 3), dtype=np.float32))]},
            "imgs/odd.png",
        ),
        ({"reliability": [{"lo": 0.0, "hi": 0.1, "count": 2}]}, "reliability bin 0"),
    ],
)
def test_bad_inputs_are_rejected_with_a_message(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render_report(_data(**changes), tmp_path / "report.html")
