"""Builds the ``report.html`` of a labeling run from its arrays (``report/`` only lays it out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pixlabel.report.data import Example, ReportData
from pixlabel.report.html import render_report

if TYPE_CHECKING:
    from pixlabel.pipeline.label import LabelRun

SAMPLES_PER_CLASS = 8
REVIEW_PREVIEW = 24


def build_report_data(run: LabelRun, *, truth: dict[str, float] | None = None) -> ReportData:
    d = run.decision
    thumbs, labeled_idx, y = run.thumbs, run.labeled_idx, run.y
    classes = run.classes
    is_seed = np.zeros(len(run.paths), bool)
    is_seed[labeled_idx] = True
    counts = {c: {"human": 0, "accepted": 0, "review": 0} for c in classes}
    for i, k in enumerate(run.predicted):
        key = "human" if is_seed[i] else ("accepted" if run.accepted[i] else "review")
        counts[classes[k]][key] += 1

    def example(i: int, note: str = "") -> Example:
        return Example(run.paths[i], classes[run.predicted[i]], float(run.confidence[i]), thumbs[i], note)

    model_rows = np.flatnonzero(~is_seed)
    samples = {}
    for k, c in enumerate(classes):
        rows = model_rows[(run.predicted[model_rows] == k) & run.accepted[model_rows]]
        samples[c] = [example(int(i)) for i in rows[:SAMPLES_PER_CLASS]]
    review_rows = model_rows[~run.accepted[model_rows]]
    review_rows = review_rows[np.argsort(run.confidence[review_rows], kind="stable")][:REVIEW_PREVIEW]
    cv_by_seed = {}
    chosen = d.cv.get(d.method)
    if chosen is not None and chosen.has_heldout:
        cv_by_seed = dict(zip(chosen.heldout_idx.tolist(), chosen.heldout_probs.argmax(1).tolist(), strict=True))
    flagged = []
    for s in d.flagged_seeds[:24]:
        i = int(labeled_idx[s])
        note = f"seed says {classes[y[s]]!r}, held-out model says {classes[cv_by_seed.get(int(s), y[s])]!r}"
        flagged.append(Example(run.paths[i], classes[y[s]], 1.0, thumbs[i], note))
    notes = list(d.notes) + [f"confidence calibration: {d.calibration} on {len(d.heldout_correct)} held-out seeds"]
    return ReportData(
        title=f"pixlabel report — {run.workspace.root}",
        images_root=run.images_root,
        workspace=str(run.workspace.root),
        classes=classes,
        counts=counts,
        model_confidence=run.confidence[~is_seed],
        reliability=d.reliability,
        ece_heldout=d.ece_heldout,
        target_precision=d.target_precision,
        threshold=d.threshold.threshold,
        expected_precision=d.threshold.expected_precision,
        coverage=float(run.accepted[~is_seed].mean()) if (~is_seed).any() else 0.0,
        method=d.method,
        cv_accuracy={n: r.accuracy for n, r in d.cv.items()},
        timings=run.timings,
        samples=samples,
        review_preview=[example(int(i)) for i in review_rows],
        flagged_seeds=flagged,
        errors=run.errors,
        notes=notes,
        truth=truth or {},
    )


def write_run_report(run: LabelRun, *, truth: dict[str, float] | None = None) -> None:
    data = build_report_data(run, truth=truth)
    render_report(data, run.workspace.report_html)
