"""``pixlabel eval`` on detection: a workspace's labels.coco.json (human seeds + scored model boxes) or a detector
directory, against truth COCO built from scenes; only images nobody labelled by hand are scored."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from pixlabel.cli.main import main
from pixlabel.datasets import default_dataset
from pixlabel.detect.scenes import make_scenes
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.records import Dataset, Provenance

N_SEEDS = 2


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset, Path]:
    root = tmp_path_factory.mktemp("scenes")
    truth = make_scenes(default_dataset(), root / "images", 8, seed=5)
    write_coco(truth, root / "truth.coco.json")
    return root / "images", truth, root / "truth.coco.json"


def workspace_file(truth: Dataset, path: Path, *, drop_on: str | None = None) -> Path:
    """What ``pixlabel label --task detect`` writes: the seed images' human boxes, model boxes with scores on
    the rest. The seeds' human boxes are deliberately wrong: they must not count as predictions."""
    seeds = {i.path for i in truth.images[:N_SEEDS]}
    labels = []
    for i, lab in enumerate(truth.labels):
        if lab.image in seeds:
            labels.append(replace(lab, label=truth.ontology.classes[0] if lab.label != truth.ontology.classes[0]
                                  else truth.ontology.classes[1]))
        elif lab.image != drop_on:
            labels.append(replace(lab, confidence=0.6 + 0.03 * (i % 10), provenance=Provenance(source="model")))
    write_coco(Dataset(truth.images, labels, truth.ontology), path)
    return path


def test_eval_scores_a_workspace_file_on_unseeded_images(scenes: tuple[Path, Dataset, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    images, truth, truth_file = scenes
    ws = workspace_file(truth, tmp_path / "labels.coco.json")
    assert main(["-q", "eval", str(ws), str(images), "--labels", str(truth_file), "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert (m["n_images"], m["n_seed_images"], m["n_unscored_images"]) == (8 - N_SEEDS, N_SEEDS, 0)
    seeded = {i.path for i in truth.images[:N_SEEDS]}
    assert m["n_truth"] == sum(lab.image not in seeded for lab in truth.labels) == m["n_pred"]
    assert m["map50"] == m["map"] == 1.0
    assert set(m["pr_curves"]) <= set(truth.ontology.classes)
    out = capsys.readouterr().out
    assert f"{8 - N_SEEDS} images" in out and "mAP@0.5 1.0000, mAP@[.5:.95] 1.0000" in out
    assert "<svg" in (tmp_path / "e" / "report.html").read_text()


def test_eval_masks_and_a_miss(scenes: tuple[Path, Dataset, Path], tmp_path: Path) -> None:
    images, truth, truth_file = scenes
    last = truth.images[-1].path
    ws = workspace_file(truth, tmp_path / "labels.coco.json", drop_on=last)  # the model found nothing there
    assert main(["-q", "eval", str(ws), str(images), "--labels", str(truth_file), "--out", str(tmp_path / "e"),
                 "--iou-type", "segm"]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["iou_type"] == "segm" and m["n_images"] == 8 - N_SEEDS
    assert m["n_pred"] == m["n_truth"] - sum(lab.image == last for lab in truth.labels)
    assert 0 < m["map50"] < 1.0


def test_eval_runs_a_detector_directory(scenes: tuple[Path, Dataset, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    images, truth, truth_file = scenes
    model = tmp_path / "detector"
    model.mkdir()
    (model / "detector.yaml").write_text("kind: test\n")
    calls = []

    def predict_dataset(model_dir: Path, images_root: Path, paths: list[str]) -> Dataset:
        calls.append((Path(model_dir), Path(images_root), list(paths)))
        return read_coco(workspace_file(truth, tmp_path / "ws.json"))  # seeds' human boxes are then wrong guesses

    fake = types.ModuleType("pixlabel.detect.predict")
    fake.predict_dataset = predict_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pixlabel.detect.predict", fake)
    assert main(["-q", "eval", str(model), str(images), "--labels", str(truth_file), "--out", str(tmp_path / "e")]) == 0
    assert calls == [(model, images, [i.path for i in truth.images])]
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_images"] == 8 and 0 < m["map50"] < 1.0  # a detector is scored on every truth image
    assert len(read_coco(tmp_path / "e" / "predictions.coco.json").labels) == len(truth.labels)


def test_eval_detection_bad_input(scenes: tuple[Path, Dataset, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    images, truth, truth_file = scenes
    ws = workspace_file(truth, tmp_path / "labels.coco.json")
    assert main(["-q", "eval", str(ws), str(images), "--out", str(tmp_path / "e")]) == 2
    assert "needs --labels" in capsys.readouterr().err
    csv = tmp_path / "truth.csv"
    csv.write_text("path,label\n")
    assert main(["-q", "eval", str(ws), str(images), "--labels", str(csv), "--out", str(tmp_path / "e")]) == 2
    assert "COCO .json" in capsys.readouterr().err
    moved = Dataset([replace(i, path=f"sub/{i.path}") for i in truth.images], [], truth.ontology)
    write_coco(moved, tmp_path / "other.json")
    assert main(["-q", "eval", str(tmp_path / "other.json"), str(images), "--labels", str(truth_file),
                 "--out", str(tmp_path / "e")]) == 2
    assert "must match truth paths" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_runs_a_saved_detector_end_to_end(scenes: tuple[Path, Dataset, Path], tmp_path: Path,
                                               one_torch_thread: None) -> None:
    """An untrained detector through the real loader and predict_dataset: the plumbing, not the score."""
    from pixlabel.detect.model import build_detector
    from pixlabel.detect.spec import DetectorSpec, save_detector

    images, truth, truth_file = scenes
    spec = DetectorSpec(arch="fcos", classes=truth.ontology.classes, image_size=128)
    save_detector(tmp_path / "det", build_detector(spec, pretrained_backbone=False), spec)
    assert main(["-q", "eval", str(tmp_path / "det"), str(images), "--labels", str(truth_file),
                 "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_images"] == 8 and m["n_truth"] == len(truth.labels) and 0.0 <= m["map50"] <= 1.0
    assert m["n_pred"] == len(read_coco(tmp_path / "e" / "predictions.coco.json").labels)
