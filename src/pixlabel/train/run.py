"""``train_model(config)``: labels file → decoded cache → split → :func:`pixlabel.train.loop.fit` → outputs.

MODEL_DIR receives ``model.yaml`` + ``weights.pt`` (best epoch, the model-directory contract),
``last.pt`` (resume point), ``config.yaml``, ``classes.txt``, ``curves.csv``, ``split.csv``, ``errors.csv``
and ``report.html`` (training curves). Example::

    result = train_model(TrainConfig(images="imgs", labels="ws/labels.csv", out="runs/m", epochs=10))
    print(result.best_val_acc)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pixlabel.config import save_config
from pixlabel.io.csvout import write_atomically, write_errors_csv
from pixlabel.models.arch import build_model
from pixlabel.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from pixlabel.train.config import TrainConfig
from pixlabel.train.data import (
    Decoded,
    Example,
    check_classes,
    decode_examples,
    no_image_matched,
    probe,
    read_examples,
)
from pixlabel.train.loop import CURVE_COLUMNS, Arrays, TrainResult, fit

log = logging.getLogger("pixlabel.train")
DEFAULT_TIMM = "timm:tf_efficientnet_lite0"
SMALL_MAX_SIDE = 64


def choose_spec(config: TrainConfig, classes: tuple[str, ...], size: tuple[int, int], gray: bool) -> ModelSpec:
    """smallcnn for small images (grayscale stays 1 channel), else the pretrained offline timm default."""
    h, w = size
    arch = config.arch or ("smallcnn" if max(h, w) <= SMALL_MAX_SIDE else DEFAULT_TIMM)
    if config.image_size:
        image_size = (config.image_size, config.image_size)
    elif arch == "smallcnn":
        image_size = (h, w) if max(h, w) <= SMALL_MAX_SIDE else (SMALL_MAX_SIDE, SMALL_MAX_SIDE)
    else:
        image_size = (224, 224)
    options: dict[str, object] = {}
    if arch == "smallcnn":
        in_chans = 1 if gray else 3
        if config.width is not None:
            options["width"] = config.width
        if config.depth is not None:
            options["depth"] = config.depth
        if config.dropout is not None:
            options["dropout"] = config.dropout
    else:
        in_chans = 3
        if config.dropout is not None:
            options["drop_rate"] = config.dropout
    return ModelSpec(arch=arch, classes=classes, image_size=image_size, in_chans=in_chans,
                     mean=IMAGENET_MEAN if in_chans == 3 else (0.5,), std=IMAGENET_STD if in_chans == 3 else (0.25,),
                     arch_options=options, tta=config.tta)


def split_indices(y: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, val) indices: ``round(fraction * n_k)`` of each class with at least 2 examples."""
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        n_val = int(round(fraction * len(members))) if len(members) >= 2 else 0
        val.append(members[:min(n_val, len(members) - 1)])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx, val_idx


def _synthetic(config: TrainConfig) -> list[Example]:
    if config.synthetic is None:
        return []
    root = Path(config.synthetic)
    examples, _ = read_examples(root, root / "labels.csv", fmt="csv")
    return [dataclasses.replace(e, source="synthetic") for e in examples]


def train_model(config: TrainConfig, *, on_epoch: Callable[[int, dict[str, float]], None] | None = None
                ) -> TrainResult:
    """Read, decode, split and train; see the module docstring for what MODEL_DIR receives."""
    out = Path(config.out)
    images = Path(config.images)
    labels = Path(config.labels) if config.labels else None
    origin = str(labels or images)
    examples, errors = read_examples(images, labels, fmt=config.format, min_confidence=config.min_confidence,
                                     only_human=config.only_human, accepted_only=config.accepted_only)
    synthetic = _synthetic(config)
    classes = check_classes(examples + synthetic, origin=origin)
    size, gray = probe(examples)
    spec = choose_spec(config, classes, size if size != (0, 0) else (64, 64), gray)
    out.mkdir(parents=True, exist_ok=True)
    real = decode_examples(examples, size=spec.image_size, in_chans=spec.in_chans, errors=errors)
    no_image_matched(examples, real, origin=origin)
    syn_errors: list[tuple[str, str]] = []
    syn = decode_examples(synthetic, size=spec.image_size, in_chans=spec.in_chans, errors=syn_errors)
    errors += [(f"{config.synthetic}/{p}", reason) for p, reason in syn_errors]
    write_errors_csv(errors, out / "errors.csv")
    if errors:
        log.warning("%d labeled rows skipped (missing, unreadable or ambiguous); see %s", len(errors),
                    out / "errors.csv")

    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[e.label] for e in real.examples], np.int64)
    train_idx, val_idx = split_indices(y, fraction=config.val_fraction, seed=config.seed)
    # Synthetic images only ever train: validation must measure the real distribution.
    x_train = np.concatenate([real.pixels[train_idx], syn.pixels])
    y_train = np.concatenate([y[train_idx], np.array([index[e.label] for e in syn.examples], np.int64)])
    w_train = None
    if config.confidence_weighted:
        w_train = np.array([real.examples[i].weight for i in train_idx] + [e.weight for e in syn.examples],
                           np.float32)
    if spec.arch == "smallcnn":  # no pretrained statistics to match: normalise with the training set's own
        flat = x_train.reshape(len(x_train), spec.in_chans, -1).astype(np.float32) / 255.0
        spec = dataclasses.replace(spec, mean=tuple(float(m) for m in flat.mean(axis=(0, 2))),
                                   std=tuple(float(max(s, 1e-3)) for s in flat.std(axis=(0, 2))))
    import torch

    torch.manual_seed(config.seed)  # the initial weights are part of the seeded run
    net = build_model(spec, pretrained=config.pretrained and spec.arch.startswith("timm:"))
    save_config(config, out / "config.yaml")
    write_atomically(out / "classes.txt", "".join(f"{c}\n" for c in classes))
    _write_split(out / "split.csv", real, syn, classes, y, val_idx)
    log.info("training %s on %d images (%d synthetic), validating on %d; %d classes, %dx%d px, %d channel(s)",
             spec.arch, len(y_train), len(syn.examples), len(val_idx), len(classes), *spec.image_size, spec.in_chans)
    result = fit(net, spec, Arrays(x_train, y_train, w_train), Arrays(real.pixels[val_idx], y[val_idx]), config,
                 on_epoch=on_epoch)
    write_curves(out / "curves.csv", result.history)
    from pixlabel.train.report import write_train_report

    write_train_report(out / "report.html", result, config=config, n_train=len(y_train), n_val=len(val_idx),
                       n_errors=len(errors))
    return result


def _write_split(path: Path, real: Decoded, syn: Decoded, classes: tuple[str, ...], y: np.ndarray,
                 val_idx: np.ndarray) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "split", "source"])
    is_val = np.zeros(len(y), bool)
    is_val[val_idx] = True
    for e, v in zip(real.examples, is_val, strict=True):
        w.writerow([e.path, e.label, "val" if v else "train", e.source])
    for e in syn.examples:
        w.writerow([e.path, e.label, "train", "synthetic"])
    write_atomically(path, buf.getvalue())


def write_curves(path: Path, history: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CURVE_COLUMNS)
    for row in history:
        w.writerow([int(row["epoch"])] + [f"{row[c]:.6g}" for c in CURVE_COLUMNS[1:]])
    write_atomically(path, buf.getvalue())
