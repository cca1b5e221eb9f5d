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
    thumbs = run.thumbs
    classes = run.classes
    seed_paths = set(run.seeds)
    is_seed = np.array([p in seed_paths for p in run.paths], dtype=bool)
    counts = {c: {"human": 0, "accepted": 0, "review": 0} for c in classes}
    for i, k in enumerate(run.predicted):
        key = "human" if is_seed[i] else ("accepted" if run.accepted[i] else "review")
        counts[classes[k]][key] += 1

    def example(i: int, note: str = "") -> Example:
        return Example(run.paths[i], classes[run.predicted[i]], float(run.confidence[i]), thumbs[i], note)

    model_rows = np.flatnonzero(~is_seed)
    samples = {}
    for k, c in enumerate(classes):
        # accepted first, then the most confident of the rest: a class shows its model labels even when nothing
        # was accepted (the note says so), so a person can see what the model means by each class
        rows = model_rows[run.predicted[model_rows] == k]
        rows = rows[np.lexsort((-run.confidence[rows], ~run.accepted[rows]))][:SAMPLES_PER_CLASS]
        samples[c] = [example(int(i), "" if run.accepted[i] else "to review") for i in rows]
    review_rows = model_rows[~run.accepted[model_rows]]
    review_rows = review_rows[np.argsort(run.confidence[review_rows], kind="stable")][:REVIEW_PREVIEW]
    flagged = []
    for s in run.suspects[:24]:
        i = int(run.labeled_idx[s.seed])
        note = (f"seed says {classes[s.given]!r}, held-out model says {classes[s.suggested]!r} "
                f"(score {s.score:.2f})")
        flagged.append(Example(run.paths[i], classes[s.given], 1.0, thumbs[i], note))
    if len(d.heldout_correct):
        calibration = f"confidence calibration: {d.calibration} on {len(d.heldout_correct)} held-out seeds"
    else:
        calibration = ("confidence is not calibrated: too few seeds to hold any out (every class needs at least "
                       "2), so every model label goes to review")
    notes = [*run.notes, *d.notes, calibration]
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
