"""What a labeling run hands to the HTML report. Plain data: the report module does no computation of its own
beyond layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Example:
    path: str
    label: str
    confidence: float
    thumb: np.ndarray  # (t, t, 3) uint8
    note: str = ""  # e.g. "seed says 'shirt', model says 't-shirt'"


@dataclass
class ReportData:
    title: str
    images_root: str
    workspace: str
    classes: list[str]
    counts: dict[str, dict[str, int]]  # class -> {"human": n, "accepted": n, "review": n}
    model_confidence: np.ndarray  # (M,) calibrated confidence of every model label
    reliability: list[dict[str, float]]  # held-out bins: lo, hi, count, mean_confidence, accuracy
    ece_heldout: float  # nan when no held-out seeds
    target_precision: float
    threshold: float
    expected_precision: float
    coverage: float
    method: str
    cv_accuracy: dict[str, float]  # labeler -> held-out accuracy on the seeds
    timings: dict[str, float]  # stage -> seconds
    samples: dict[str, list[Example]]  # class -> a few accepted examples
    review_preview: list[Example]  # least confident first
    flagged_seeds: list[Example]  # human labels cleanlab finds suspicious
    errors: list[tuple[str, str]]  # (path, reason)
    notes: list[str] = field(default_factory=list)  # e.g. calibration method, warnings
    truth: dict[str, float] = field(default_factory=dict)  # demo only: accuracy vs hidden truth etc.
