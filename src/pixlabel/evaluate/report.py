"""``report.html`` of an evaluation: metrics summary, confusion heat map, per-class bars, reliability diagram
and a gallery of the most confident mistakes (inline base64 thumbnails), in one offline file."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
from markupsafe import Markup, escape

from pixlabel.evaluate.charts import grouped_bars, heatmap, page, table
from pixlabel.io.csvout import write_atomically
from pixlabel.report.svg import reliability_diagram
from pixlabel.trust.calibrate import reliability_table


def png_data_uri(im: Any) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gallery(mistakes: list[Any]) -> Markup:
    if not mistakes:
        return Markup("<p>No mistakes.</p>")
    figs = "".join(
        f'<figure><img src="{png_data_uri(m.thumb)}" alt="{escape(m.path)}">'
        f"<figcaption>{escape(m.path)}<br>true <b>{escape(m.label)}</b><br>predicted <b>{escape(m.predicted)}"
        f"</b> ({m.confidence:.0%})</figcaption></figure>" for m in mistakes)
    return Markup(f'<div class="gallery">{figs}</div>')


def write_eval_report(path: Path, metrics: dict[str, Any], probs: np.ndarray, y: np.ndarray,
                      mistakes: list[Any]) -> None:
    classes = metrics["classes"]
    summary_rows: list[list[object]] = [["images", metrics["n"]], ["accuracy", metrics["accuracy"]],
                                        ["macro F1", metrics["macro_f1"]], ["ECE (15 bins)", metrics["ece"]],
                                        ["skipped rows", metrics["n_skipped"]]]
    if "robust_accuracy" in metrics:
        a = metrics["attack"]
        summary_rows.append([f"robust accuracy ({a['kind']}, eps {a['eps']:.4g} in [0,1] pixels)",
                             metrics["robust_accuracy"]])
    pc = metrics["per_class"]
    per_class = table(["class", "precision", "recall", "f1", "support"],
                      [[c, pc[c]["precision"], pc[c]["recall"], pc[c]["f1"], pc[c]["support"]] for c in classes])
    bars = grouped_bars(classes, {k: [pc[c][k] for c in classes] for k in ("precision", "recall", "f1")},
                        title="per-class precision, recall, F1")
    conf = probs.max(axis=1)
    bins = reliability_table(conf, probs.argmax(axis=1) == y, n_bins=15)
    rel = reliability_diagram(cast(list[Mapping[str, float]], bins))  # TypedDict rows of floats and a count
    html = page(f"Evaluation: {metrics['model']}", [
        ("Summary", table(["metric", "value"], summary_rows)),
        ("Confusion matrix", heatmap(np.asarray(metrics["confusion_matrix"]), classes)),
        ("Per class", Markup(bars + per_class)),
        ("Reliability diagram", rel),
        ("Most confident mistakes", gallery(mistakes)),
    ])
    write_atomically(path, html)
