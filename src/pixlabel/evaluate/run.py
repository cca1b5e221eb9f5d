"""``evaluate_model(EvalConfig(...))``: score a model directory or ONNX file on labeled images.

DIR receives ``metrics.json`` (accuracy, macro_f1, per_class, confusion_matrix, ece, and robust_accuracy
under ``--attack``), ``predictions.csv``, ``errors.csv`` and ``report.html``. Images are decoded and predicted
in chunks, so memory stays flat on large test sets. Example::

    metrics = evaluate_model(EvalConfig(model="runs/m", images="test", labels="test/labels.csv", out="runs/eval"))
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.evaluate.metrics import classification_metrics
from pixlabel.io.csvout import write_atomically, write_errors_csv
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.models.spec import ModelSpec, load_predictor
from pixlabel.progress import bar
from pixlabel.train.data import Example, read_examples, to_pixels

log = logging.getLogger("pixlabel.eval")
ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class EvalConfig:
    model: str
    images: str
    out: str
    labels: str | None = None
    format: str = "auto"
    attack: str | None = None     # fgsm | pgd: also report accuracy on adversarial images
    eps: float = 8 / 255          # L-inf radius in [0, 1] pixel space
    attack_steps: int = 10
    batch_size: int = 256
    gallery: int = 24             # worst mistakes shown in report.html

    def __post_init__(self) -> None:
        if self.attack is not None and self.attack not in ATTACKS:
            raise InputError(f"--attack: expected fgsm or pgd, got {self.attack!r}")
        if not 0.0 < self.eps <= 1.0:
            raise InputError(f"--eps: expected a radius in (0, 1] pixel space, got {self.eps}")


@dataclass
class _Mistake:
    confidence: float
    path: str
    label: str
    predicted: str
    thumb: Image.Image


def _check_attackable(config: EvalConfig) -> None:
    if config.attack and Path(config.model).suffix.lower() == ".onnx":
        raise InputError(f"{config.model}: --attack {config.attack} needs gradients, and an ONNX model has no "
                         "gradients; attack the model directory it was exported from instead")


def evaluate_model(config: EvalConfig) -> dict[str, Any]:
    _check_attackable(config)
    predictor = load_predictor(config.model)
    spec: ModelSpec = predictor.spec
    labels = Path(config.labels) if config.labels else None
    origin = str(labels or config.images)
    examples, errors = read_examples(Path(config.images), labels, fmt=config.format)
    index = {c: i for i, c in enumerate(spec.classes)}
    known = []
    for e in examples:
        if e.label in index:
            known.append(e)
        else:
            errors.append((e.path, f"label {e.label!r} is not a class of the model ({', '.join(spec.classes)})"))
    if not known:
        raise InputError(f"{origin}: none of its labels is a class of the model {config.model} "
                         f"({', '.join(spec.classes)})")
    attacker = _attacker(predictor, config) if config.attack else None

    rows: list[tuple[Example, np.ndarray, int | None]] = []
    mistakes: list[tuple[float, int, _Mistake]] = []
    with bar(desc="eval", total=len(known), unit="img") as pbar:
        for start in range(0, len(known), config.batch_size):
            chunk, images = [], []
            for e in known[start:start + config.batch_size]:
                try:
                    if not e.file.is_file():
                        raise ImageDecodeError("missing: no such file")
                    images.append(load_rgb(e.file))
                    chunk.append(e)
                except ImageDecodeError as exc:
                    errors.append((e.path, exc.reason))
            pbar.update(min(config.batch_size, len(known) - start))
            if not chunk:
                continue
            probs = predictor.predict_proba(images)
            adv_pred = attacker(images, [index[e.label] for e in chunk]) if attacker else [None] * len(chunk)
            for e, p, im, a in zip(chunk, probs, images, adv_pred, strict=True):
                rows.append((e, p, a))
                pred = int(p.argmax())
                if pred != index[e.label]:
                    thumb = im.copy()
                    thumb.thumbnail((112, 112))
                    item = (float(p[pred]), len(rows), _Mistake(float(p[pred]), e.path, e.label,
                                                                spec.classes[pred], thumb))
                    (heapq.heappush if len(mistakes) < config.gallery else heapq.heappushpop)(mistakes, item)
    if not rows:
        raise InputError(f"{origin}: none of its {len(known)} labeled rows matches a readable image under "
                         f"{config.images} (first: {known[0].path!r})")
    y = np.array([index[e.label] for e, _, _ in rows])
    probs_all = np.stack([p for _, p, _ in rows])
    metrics = classification_metrics(y, probs_all, spec.classes)
    metrics["model"] = str(config.model)
    metrics["n_skipped"] = len(errors)
    if config.attack:
        adv = np.array([a for _, _, a in rows])
        metrics["attack"] = {"kind": config.attack, "eps": config.eps, "space": "[0,1] pixels, L-inf",
                             "steps": config.attack_steps if config.attack == "pgd" else 1}
        metrics["robust_accuracy"] = float((adv == y).mean())
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_predictions(out / "predictions.csv", rows, spec)
    write_errors_csv(errors, out / "errors.csv")
    from pixlabel.evaluate.report import write_eval_report

    worst = [m for _, _, m in sorted(mistakes, key=lambda t: (-t[0], t[1]))]
    write_eval_report(out / "report.html", metrics, probs_all, y, worst)
    if errors:
        log.warning("%d rows skipped (missing/unreadable image or unknown class); see %s", len(errors),
                    out / "errors.csv")
    return metrics


def _attacker(predictor: Any, config: EvalConfig) -> Any:
    """A function (PIL images, true class indices) -> predicted class under attack, for PyTorch models."""
    module = getattr(predictor, "module", None)
    if module is None:
        raise InputError(f"{config.model}: --attack needs gradients and this model's runtime has none")
    import torch

    from pixlabel.train.attacks import PixelSpace, perturb

    spec = predictor.spec
    net = PixelSpace(module, spec.mean, spec.std).eval()

    def attack(images: list[Image.Image], y: list[int]) -> list[int]:
        x = torch.from_numpy(np.stack([to_pixels(im, size=spec.image_size, in_chans=spec.in_chans)
                                       for im in images])).float().div_(255)
        x_adv = perturb(net, x, torch.tensor(y), kind=str(config.attack), eps=config.eps, steps=config.attack_steps)
        with torch.inference_mode():
            return [int(v) for v in net(x_adv).argmax(1)]

    return attack


def _write_predictions(path: Path, rows: list[tuple[Example, np.ndarray, int | None]], spec: ModelSpec) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    attacked = bool(rows) and rows[0][2] is not None
    w.writerow(["path", "label", "predicted", "confidence", "correct"] + (["adv_predicted"] if attacked else [])
               + [f"p_{c}" for c in spec.classes])
    for e, p, a in rows:
        pred = int(p.argmax())
        w.writerow([e.path, e.label, spec.classes[pred], f"{p[pred]:.6f}", int(spec.classes[pred] == e.label)]
                   + ([spec.classes[a]] if attacked and a is not None else [])
                   + [f"{v:.6f}" for v in p])
    write_atomically(path, buf.getvalue())
