"""``metrics.json`` and ``report.html`` of a detection evaluation: summary, per-class AP bars and table, and
precision–recall curves at IoU 0.5, drawn with the offline SVG helpers of :mod:`pixlabel.evaluate.charts`.

>>> "mAP@0.5" in detection_report_html({"iou_type": "bbox", "map50": 1.0, "map": 0.8, "map75": 1.0,
...     "n_images": 1, "n_truth": 1, "n_pred": 1, "classes": ["cat"], "per_class": {"cat": {"ap50": 1.0,
...     "ap": 0.8, "ap75": 1.0, "recall50": 1.0, "n_truth": 1, "n_pred": 1}},
...     "pr_curves": {"cat": {"recall": [0.0, 1.0], "precision": [1.0, 1.0]}}}, title="t")
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import Markup

from pixlabel.evaluate.charts import grouped_bars, line_chart, page, table
from pixlabel.io.csvout import write_atomically

KIND = {"bbox": "boxes", "segm": "masks"}


def write_detection_report(out: Path | str, metrics: dict[str, Any], *, title: str = "Detection evaluation") -> None:
    """Write ``out/metrics.json`` (``metrics`` as given) and ``out/report.html``, creating ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_atomically(out / "report.html", detection_report_html(metrics, title=title))


def detection_report_html(metrics: dict[str, Any], *, title: str) -> str:
    pc = metrics["per_class"]
    scored = [c for c in metrics["classes"] if pc[c]["ap50"] is not None]  # classes with truth
    summary = table(["metric", "value"], [
        ["scored on", KIND.get(metrics["iou_type"], metrics["iou_type"])],
        ["images", metrics["n_images"]], ["truth objects", metrics["n_truth"]], ["predictions", metrics["n_pred"]],
        ["mAP@0.5", metrics["map50"]], ["mAP@[.5:.95]", metrics["map"]], ["mAP@0.75", metrics["map75"]],
        *([k.replace("_", " "), v] for k, v in metrics.items() if k in ("n_seed_images", "n_unscored_images")),
    ])
    bars = grouped_bars(scored, {"AP@0.5": [pc[c]["ap50"] for c in scored],
                                 "AP@[.5:.95]": [pc[c]["ap"] for c in scored]}, title="AP per class")
    rows = table(["class", "AP@0.5", "AP@[.5:.95]", "AP@0.75", "recall@0.5", "truth", "predicted"],
                 [[c, pc[c]["ap50"], pc[c]["ap"], pc[c]["ap75"], pc[c]["recall50"], pc[c]["n_truth"],
                   pc[c]["n_pred"]] for c in metrics["classes"]])
    # COCO pads precision with zeros past the highest recall reached; the curve ends there instead
    curves = {c: [(r, p) for r, p in zip(pr["recall"], pr["precision"], strict=True)
                  if r <= (pc[c]["recall50"] or 0.0) + 1e-9] for c, pr in metrics["pr_curves"].items()}
    pr = line_chart(curves, title="precision–recall at IoU 0.5", x_label="recall", y_label="precision",
                    width=620, height=320, x_range=(0.0, 1.0), y_range=(0.0, 1.0))
    note = Markup("<p>COCO-style 101-point interpolated precision, at most "
                  f"{int(metrics.get('max_detections', 100))} detections per image; a class without truth "
                  "objects has no AP and is left out of the mean.</p>")
    return page(title, [
        ("Summary", summary),
        ("Average precision per class", Markup(bars + rows) if scored else rows),
        ("Precision–recall curves (IoU 0.5)", Markup(pr + note)),
    ])
