"""The few lines a person reads after ``pixlabel label``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixlabel.pipeline.detect_label import DetectRun
    from pixlabel.pipeline.label import LabelRun


def print_summary(run: LabelRun) -> None:
    d = run.decision
    n = len(run.paths)
    n_model = n - len(run.seeds)
    n_acc = int(run.accepted.sum()) - len(run.seeds)
    cv = ", ".join(f"{k} {v.accuracy:.3f}" for k, v in d.cv.items())
    print(f"labeled {n} images ({len(run.seeds)} human seeds, {len(run.classes)} classes) with {d.method} "
          f"[held-out seed accuracy: {cv}]")
    print(f"accepted {n_acc}/{n_model} model labels ({n_acc / max(n_model, 1):.1%}) at confidence >= "
          f"{d.threshold.threshold:.3f} (expected precision {d.threshold.expected_precision:.1%}, target "
          f"{d.target_precision:.0%}); {n_model - n_acc} to review")
    for note in d.notes:
        print(f"note: {note}")
    if run.errors:
        print(f"{len(run.errors)} unreadable file(s): see {run.workspace.errors_csv}")
    _time_and_paths(run)


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
    print(f"accepted {n_acc}/{len(model)} boxes at confidence >= {run.threshold:.3f} (expected precision "
          f"{run.expected_precision:.1%}); {len(model) - n_acc} to review; {run.images_done}/{len(run.predicted)} "
          "images fully accepted")
    if run.errors:
        print(f"{len(run.errors)} unreadable file(s): see {run.workspace.errors_csv}")
    _time_and_paths(run)
    print(f"boxes: {run.coco_path}\ndetector: {run.detector_dir}")


def _time_and_paths(run: LabelRun | DetectRun) -> None:
    total = sum(run.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
    print(f"time {total:.1f}s ({stages})")
    print(f"labels: {run.workspace.labels_csv}\nreport: {run.workspace.report_html}")
