"""pixlabel eval: metrics equal scikit-learn's on a known case; files, report, attacks and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from pixlabel.errors import InputError
from pixlabel.evaluate import EvalConfig, classification_metrics, evaluate_model
from pixlabel.train import TrainConfig, train_model
from test_train_core import make_patterns


def test_metrics_match_sklearn_on_a_known_case() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 1, 2, 2, 0, 2, 2])
    probs = np.full((10, 3), 0.05)
    probs[np.arange(10), pred] = 0.9
    m = classification_metrics(y, probs, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y, pred)
    assert m["per_class"]["a"] == {"precision": pytest.approx(p[0]), "recall": pytest.approx(r[0]),
                                   "f1": pytest.approx(f[0]), "support": 3}
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)  # 2 of 3 predicted a are a
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.8)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 4]]
    # every prediction says 0.9 and 80 % are right: ECE = |0.8 - 0.9|
    assert m["ece"] == pytest.approx(0.1)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaldata")
    make_patterns(root / "train", n=120)
    make_patterns(root / "test", n=45, seed=7)
    out = root / "model"
    train_model(TrainConfig(images=str(root / "train"), labels=str(root / "train" / "labels.csv"), out=str(out),
                            epochs=4, batch_size=32, seed=0))
    return out, root / "test"


def test_eval_writes_metrics_predictions_report(model: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, test = model
    labels = tmp_path / "truth.csv"
    rows = (test / "labels.csv").read_text().splitlines()
    rows[1] = "images/000.png,tl"  # a bar image with a deliberately wrong truth: a mistake for the gallery
    rows[2] = "images/001.png,zebra"  # not a class of the model
    rows.append("images/missing.png,tl")
    labels.write_text("\n".join(rows) + "\n")
    m = evaluate_model(EvalConfig(model=str(model_dir), images=str(test), labels=str(labels), out=str(tmp_path / "e")))
    on_disk = json.loads((tmp_path / "e" / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "ece"):
        assert key in on_disk
    assert on_disk["accuracy"] == m["accuracy"] and 0.8 <= m["accuracy"] < 1.0
    assert m["n"] == 44 and sum(map(sum, m["confusion_matrix"])) == 44
    assert set(m["per_class"]["tl"]) == {"precision", "recall", "f1", "support"}
    preds = list(csv.DictReader((tmp_path / "e" / "predictions.csv").open()))
    assert len(preds) == 44 and {"path", "label", "predicted", "confidence", "correct"} <= set(preds[0])
    assert np.mean([int(r["correct"]) for r in preds]) == pytest.approx(m["accuracy"])
    errors = {r["path"]: r["reason"] for r in csv.DictReader((tmp_path / "e" / "errors.csv").open())}
    assert "missing" in errors["images/missing.png"] and "zebra" in errors["images/001.png"]
    html = (tmp_path / "e" / "report.html").read_text()
    assert "Confusion matrix" in html and 'class="rel-bar"' in html and "data:image/png;base64," in html


@pytest.mark.slow
def test_attack_lowers_accuracy_and_onnx_attack_is_refused(model: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, test = model
    m = evaluate_model(EvalConfig(model=str(model_dir), images=str(test), labels=str(test / "labels.csv"),
                                  out=str(tmp_path / "e"), attack="pgd", eps=0.3, attack_steps=5))
    assert m["attack"]["kind"] == "pgd" and 0.0 <= m["robust_accuracy"] < m["accuracy"]
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really")
    with pytest.raises(InputError, match="no gradients"):
        evaluate_model(EvalConfig(model=str(onnx), images=str(test), labels=str(test / "labels.csv"),
                                  out=str(tmp_path / "x"), attack="fgsm"))


def test_labels_matching_nothing_is_an_error(model: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, test = model
    labels = tmp_path / "other.csv"
    labels.write_text("path,label\nnope/1.png,tl\n")
    with pytest.raises(InputError, match="other.csv"):
        evaluate_model(EvalConfig(model=str(model_dir), images=str(test), labels=str(labels), out=str(tmp_path / "e")))
    labels.write_text("path,label\nimages/000.png,zebra\n")
    with pytest.raises(InputError, match="none of its labels is a class of the model"):
        evaluate_model(EvalConfig(model=str(model_dir), images=str(test), labels=str(labels), out=str(tmp_path / "e")))


@pytest.mark.slow
def test_eval_on_exported_onnx_matches_the_model_dir(model: tuple[Path, Path], tmp_path: Path) -> None:
    onnx_export = pytest.importorskip("pixlabel.export.onnx_export")
    from pixlabel.models import load_model

    model_dir, test = model
    module, spec = load_model(model_dir)
    path = onnx_export.write_onnx(module, spec, tmp_path / "m.onnx", exporter="torchscript")
    labels = str(test / "labels.csv")
    a = evaluate_model(EvalConfig(model=str(model_dir), images=str(test), labels=labels, out=str(tmp_path / "a")))
    b = evaluate_model(EvalConfig(model=str(path), images=str(test), labels=labels, out=str(tmp_path / "b")))
    assert b["accuracy"] == a["accuracy"] and b["confusion_matrix"] == a["confusion_matrix"]
    assert b["ece"] == pytest.approx(a["ece"], abs=1e-4)
