"""``MODEL_DIR/report.html``: training curves (loss, accuracy) and the run's settings in one offline file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pixlabel.evaluate.charts import line_chart, page, table
from pixlabel.io.csvout import write_atomically
from pixlabel.train.config import TrainConfig
from pixlabel.train.loop import TrainResult


def write_train_report(path: Path, result: TrainResult, *, config: TrainConfig, n_train: int, n_val: int,
                       n_errors: int) -> None:
    h = result.history
    loss = line_chart({"train loss": [(r["epoch"], r["train_loss"]) for r in h],
                       "val loss": [(r["epoch"], r["val_loss"]) for r in h]}, title="loss", y_label="loss")
    acc = line_chart({"train acc": [(r["epoch"], r["train_acc"]) for r in h],
                      "val acc": [(r["epoch"], r["val_acc"]) for r in h]}, title="accuracy", y_label="accuracy")
    summary = table(["", ""], [
        ["arch", result.spec.arch], ["classes", len(result.spec.classes)],
        ["image size (h, w)", f"{result.spec.image_size}"], ["train / val images", f"{n_train} / {n_val}"],
        ["skipped rows (errors.csv)", n_errors], ["epochs run", result.epochs_run],
        ["best epoch", result.best_epoch],
        ["best val accuracy", "–" if result.best_val_acc is None else f"{result.best_val_acc:.4f}"],
        ["stopped early", result.stopped_early], ["seconds", f"{result.seconds:.0f}"],
    ])
    settings = table(["option", "value"], [[k, v] for k, v in dataclasses.asdict(config).items()])
    html = page(f"Training report: {path.parent.name}", [
        ("Summary", summary), ("Loss", loss), ("Accuracy", acc), ("Settings", settings)])
    write_atomically(path, html)
