"""The few lines a person reads after ``pixlabel label``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pixlabel.pipeline.decide import Decision
    from pixlabel.pipeline.detect_label import DetectRun
    from pixlabel.pipeline.label import LabelRun


def print_summary(run: LabelRun) -> None:
    d = run.decision
    n = len(run.paths)
    print(f"labeled {n} images ({len(run.seeds)} human seeds, {len(run.classes)} classes) with {d.method} "
          f"[{cv_text(d)}]")
    print(accept_text(run))
    for note in [*run.notes, *d.notes]:
        print(f"note: {note}")
    if run.suspects:
        print(f"{len(run.suspects)} seed label(s) look wrong to the held-out model: see "
              f"{run.workspace.root / 'suspects.csv'} (and the report)")
    if run.errors:
        print(f"{len(run.errors)} unreadable file(s): see {run.workspace.errors_csv}")
    _time_and_paths(run)


def cv_text(d: Decision) -> str:
    """Held-out seed accuracy per candidate, in words when there was nothing to hold out (never ``nan``)."""
    scored = {k: v.accuracy for k, v in d.cv.items() if math.isfinite(v.accuracy)}
    if not scored:
        return "no held-out check: some class has fewer than 2 seeds"
    unscored = [k for k in d.cv if k not in scored]
    text = "held-out seed accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in scored.items())
    return text + (f"; not measured for {', '.join(unscored)}" if unscored else "")


def accept_text(run: LabelRun) -> str:
    """How many model labels were accepted and why, in words: the reason when nothing was (never ``nan``)."""
    d = run.decision
    copies = np.zeros(len(run.paths), bool) if run.copy_of_seed is None else run.copy_of_seed
    n_copies = int(copies.sum())
    n_model = len(run.paths) - len(run.seeds) - n_copies
    n_acc = int(run.accepted[~copies].sum()) - len(run.seeds)
    target = f"{d.target_precision:.0%}"
    copied = f" (and {n_copies} byte-identical copies of seed images took the seed's label)" if n_copies else ""
    return _accepted(run, n_model, n_acc, target) + copied


def _accepted(run: LabelRun, n_model: int, n_acc: int, target: str) -> str:
    d = run.decision
    if n_acc > 0:
        precision = d.threshold.expected_precision
        expected = f"expected precision {precision:.1%}" if math.isfinite(precision) else "precision not estimated"
        return (f"accepted {n_acc}/{n_model} model labels ({n_acc / max(n_model, 1):.1%}) at confidence >= "
                f"{d.threshold.threshold:.3f} ({expected}, target {target}); {n_model - n_acc} to review")
    if not len(d.heldout_correct):
        why = ("too few seeds to hold any out and calibrate the confidence (every class needs at least 2 "
               "seeds), so no label can be trusted without review")
    else:
        why = (f"no confidence threshold reaches the target precision {target} on {len(d.heldout_correct)} "
               "held-out seeds")
    return f"accepted 0/{n_model} model labels: {why}; all {n_model} go to review"


def print_detect_summary(run: DetectRun) -> None:
    model = run.answers
    n_acc = sum(lab.status == "accepted" for lab in model)
    n_alt = sum(len(labs) for labs in run.predicted.values()) - len(model)
    kept = run.teacher.rounds[run.teacher.best_round]
    reviewed = f", {run.reviewed} finished by reviewers" if run.reviewed else ""
    print(f"boxed {len(run.predicted)} images from {len(run.seeds)} seed images{reviewed} ({len(run.classes)} "
          f"classes): {len(model)} model boxes (+{n_alt} lower-ranked alternatives, exported, not queued), kept "
          f"round {run.teacher.best_round} (held-out seed mAP@0.5 {kept['val_map50']:.3f}); detector input "
          f"{run.detector_size} px, budget {run.budget_minutes:.1f} min{' (resumed)' if run.resumed else ''}")
    done = f"{run.images_done}/{len(run.predicted)} images fully accepted"
    if n_acc and math.isfinite(run.expected_precision):
        print(f"accepted {n_acc}/{len(model)} boxes at confidence >= {run.threshold:.3f} (expected precision "
              f"{run.expected_precision:.1%}); {len(model) - n_acc} to review; {done}")
    else:
        print(f"accepted {n_acc}/{len(model)} boxes: no confidence threshold reaches the target precision; "
              f"{len(model) - n_acc} to review; {done}")
    if run.errors:
        print(f"{len(run.errors)} unreadable file(s): see {run.workspace.errors_csv}")
    _time_and_paths(run)
    print(f"boxes: {run.coco_path}\ndetector: {run.detector_dir}")


def _time_and_paths(run: LabelRun | DetectRun) -> None:
    total = sum(run.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
    print(f"time {total:.1f}s ({stages})")
    print(f"labels: {run.workspace.labels_csv}\nreport: {run.workspace.report_html}")
