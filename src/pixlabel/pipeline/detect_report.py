"""``report.html`` of a box/mask labeling run: rounds, class counts, confidences, the review queue drawn."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape
from PIL import Image, ImageDraw

from pixlabel.evaluate.charts import PALETTE, grouped_bars, page, table
from pixlabel.evaluate.report import png_data_uri
from pixlabel.io.csvout import write_atomically
from pixlabel.report.svg import confidence_histogram

if TYPE_CHECKING:
    from pixlabel.detect.data import DetImage
    from pixlabel.pipeline.detect_label import DetectRun

REVIEW_PREVIEW = 24


def _drawn(image: DetImage, labels: list, classes: list[str]) -> Image.Image:
    im = Image.fromarray(image.pixels.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(im)
    for lab in labels:
        b = lab.box
        color = PALETTE[classes.index(lab.label) % len(PALETTE)]
        draw.rectangle([b.x1 * image.scale, b.y1 * image.scale, b.x2 * image.scale, b.y2 * image.scale],
                       outline=color, width=2 if lab.status == "review" else 1)
        draw.text((b.x1 * image.scale + 2, b.y1 * image.scale), f"{lab.label} {lab.confidence:.2f}", fill=color)
    return im


def _answers(labels: list) -> list:
    return [lab for lab in labels if lab.rank == 0]


def write_detect_report(run: DetectRun, images: list[DetImage]) -> None:
    by_path = {im.path: im for im in images}
    model = run.answers  # alternatives (rank >= 1) are in the exports, not in these counts
    n_alt = sum(lab.rank > 0 for labs in run.predicted.values() for lab in labs)
    conf = np.array([lab.confidence for lab in model])
    accepted = sum(lab.status == "accepted" for lab in model)
    human = Counter(lab.label for labs in run.seeds.values() for lab in labs)
    acc = Counter(lab.label for lab in model if lab.status == "accepted")
    rev = Counter(lab.label for lab in model if lab.status == "review")
    summary = table(["", "value"], [
        ["images", len(run.seeds) + len(run.predicted)], ["seed images (human boxes)", len(run.seeds)],
        ["… of them finished by reviewers", run.reviewed],
        ["detector input (shorter side, px)", run.detector_size], ["time budget (min)", run.budget_minutes],
        ["resumed from a checkpoint", "yes" if run.resumed else "no"],
        ["human boxes", sum(human.values())], ["model boxes (answers)", len(model)],
        ["ranked alternatives (exported, not queued)", n_alt], ["accepted model boxes", accepted],
        ["images fully accepted (no box to review)", f"{run.images_done} of {len(run.predicted)}"],
        ["accept threshold (calibrated)", run.threshold], ["expected precision of accepted", run.expected_precision],
        ["held-out seed mAP@0.5 (kept round)", run.teacher.val_map50], ["unreadable files", len(run.errors)],
    ])
    rounds = table(["round", "held-out mAP@0.5", "pseudo-boxes", "seconds"],
                   [[r["round"], r["val_map50"], r["pseudo_boxes"], r["seconds"]] for r in run.teacher.rounds])
    total = max(1, max((human[c] + acc[c] + rev[c] for c in run.classes), default=1))
    bars = grouped_bars(run.classes, {"human": [human[c] / total for c in run.classes],
                                      "accepted": [acc[c] / total for c in run.classes],
                                      "review": [rev[c] / total for c in run.classes]},
                        title=f"boxes per class (fraction of the largest class, {total})")
    doubtful = sorted((p for p, labs in run.predicted.items() if any(lab.status == "review" for lab in _answers(labs))),
                      key=lambda p: min(lab.confidence for lab in _answers(run.predicted[p])))[:REVIEW_PREVIEW]
    figs = "".join(f'<figure><img src="{png_data_uri(_drawn(by_path[p], _answers(run.predicted[p]), run.classes))}" '
                   f'alt="{escape(p)}"><figcaption>{escape(p)}</figcaption></figure>' for p in doubtful)
    errors = table(["path", "reason"], run.errors[:200]) if run.errors else Markup("<p>None.</p>")
    timings = table(["stage", "seconds"], list(run.timings.items()))
    html = page(f"pixlabel boxes — {run.workspace.root}", [
        ("Summary", summary), ("Teacher–student rounds", rounds), ("Class counts", bars),
        ("Calibrated confidence of model boxes", confidence_histogram(conf, threshold=run.threshold)),
        ("Review queue preview (least confident first; thick boxes go to review)",
         Markup(f'<div class="gallery">{figs}</div>') if figs else Markup("<p>Nothing to review.</p>")),
        ("Unreadable files", errors), ("Timings", timings),
    ])
    write_atomically(run.workspace.report_html, html)
