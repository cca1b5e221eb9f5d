"""Exports read by the real clients: pycocotools loads and scores the COCO export, Ultralytics trains on the
YOLO export (boxes and segments). Scenes are real Fashion-MNIST items pasted on backgrounds
(:mod:`pixlabel.detect.scenes`)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pixlabel.cli.main import main
from pixlabel.datasets import default_dataset
from pixlabel.detect.metrics import detection_metrics
from pixlabel.detect.scenes import make_scenes
from pixlabel.io.formats.coco import write_coco
from pixlabel.records import Box, Dataset, Provenance


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    root = tmp_path_factory.mktemp("scenes")
    return root, make_scenes(default_dataset(), root, 10, seed=3)


def _as_predictions(ds: Dataset, *, shift: float = 0.0) -> Dataset:
    """Truth as model output, every box moved right by ``shift`` of its width (IoU 1 / (1 + 2 shift) ...)."""
    out = []
    for i, lab in enumerate(ds.labels):
        b = lab.box
        assert b is not None
        dx = shift * (b.x2 - b.x1)
        box = Box(b.x1 + dx, b.y1, b.x2 + dx, b.y2, image_size=b.image_size)  # may poke out: COCO does not care
        out.append(replace(lab, box=box, mask=None if shift else lab.mask, confidence=0.5 + 0.4 * (i % 2),
                           provenance=Provenance(source="model")))
    return Dataset(ds.images, out, ds.ontology)


def _pycocotools_eval(truth_file: Path, predictions: list[dict], iou_type: str) -> COCOeval:
    gt = COCO(str(truth_file))
    evaluator = COCOeval(gt, gt.loadRes(predictions), iouType=iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def test_coco_export_loads_and_scores_in_pycocotools(scenes: tuple[Path, Dataset], tmp_path: Path) -> None:
    _root, truth = scenes
    path = tmp_path / "truth.coco.json"
    write_coco(truth, path)
    gt = COCO(str(path))
    assert len(gt.getImgIds()) == 10
    assert len(gt.getAnnIds()) == len(truth.labels) >= 10
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == list(truth.ontology.classes)

    # truth scored against itself, boxes and RLE masks as pycocotools reads them back: a perfect score
    perfect = [dict(ann, score=1.0) for ann in gt.dataset["annotations"]]
    for iou_type in ("bbox", "segm"):
        stats = _pycocotools_eval(path, perfect, iou_type).stats
        assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0), iou_type

    # boxes moved by 30 % of their width: IoU 0.54, still hits at 0.5, misses at stricter thresholds
    moved = _as_predictions(truth, shift=0.3)
    moved_file = tmp_path / "moved.coco.json"
    write_coco(moved, moved_file)
    results = [{k: ann[k] for k in ("image_id", "category_id", "bbox", "score")}
               for ann in json.loads(moved_file.read_text())["annotations"]]
    stats = _pycocotools_eval(path, results, "bbox").stats
    assert stats[1] == pytest.approx(1.0)  # mAP@0.5
    assert stats[0] < 0.25  # mAP@[.5:.95]: only the first of ten thresholds is met

    # our metrics are pycocotools' numbers, on the same data
    ours = detection_metrics(truth, moved)
    assert ours["map"] == pytest.approx(stats[0], abs=1e-6)
    assert ours["map50"] == pytest.approx(stats[1], abs=1e-6)
    assert ours["map75"] == pytest.approx(stats[2], abs=1e-6)


# Runs in a child process: Ultralytics reads its settings directory and online state once at import and sets
# process-wide environment (OMP_NUM_THREADS), so a fresh interpreter with its own environment is the only way
# to keep it inside tmp_path. An audit hook refuses and records every network attempt and every write outside
# the sandbox; the parent test asserts both lists are empty.
TRAIN_SCRIPT = r"""
import json, os, socket, sys
sandbox = os.path.realpath(sys.argv[1])
network, outside = [], []
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def inside(path):
    real = os.path.realpath(os.fsdecode(path))
    return real == os.devnull or real.startswith(sandbox + os.sep)

def hook(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname") or (
            event == "socket.connect" and isinstance(args[1], tuple)):
        network.append(f"{event} {args[1] if event == 'socket.connect' else args[0]}")
        raise OSError("network disabled by the test")
    if event == "open" and not isinstance(args[0], int):
        mode, flags = args[1] or "", args[2] or 0
        if (any(c in mode for c in "wax+") or flags & WRITE_FLAGS) and not inside(args[0]):
            outside.append(os.fsdecode(args[0]))
    elif event in ("os.mkdir", "os.rename", "os.remove", "shutil.copyfile") and not inside(args[0]):
        outside.append(f"{event} {os.fsdecode(args[0])}")

sys.addaudithook(hook)
from ultralytics import YOLO, settings

# no analytics, no third-party loggers (Ray Tune, MLflow, ... are imported when installed), folders in the sandbox
settings.update(sync=False, clearml=False, comet=False, dvc=False, mlflow=False, raytune=False, tensorboard=False,
                wandb=False, **{k: os.path.join(sandbox, k) for k in ("datasets_dir", "weights_dir", "runs_dir")})
model = YOLO(sys.argv[3])
model.train(data=sys.argv[2], epochs=1, imgsz=64, batch=8, device="cpu", workers=0, plots=False, val=True,
            amp=False, project=os.path.join(sandbox, "runs"), name="train", exist_ok=True, seed=0, verbose=False)
t = model.trainer
print("RESULT " + json.dumps({
    "nc": t.data["nc"], "names": list(t.data["names"].values()), "model_nc": t.model.nc,
    "train_images": len(t.train_loader.dataset), "val_images": len(t.test_loader.dataset), "task": t.args.task,
    "instances": sum(len(lb["cls"]) for lb in t.train_loader.dataset.labels),
    "segments": sum(len(lb["segments"]) for lb in t.train_loader.dataset.labels),
    "losses": {k: float(v) for k, v in (t.tloss.items() if isinstance(t.tloss, dict)  # 8.4: dict; 8.3: tensor
                                         else zip(t.loss_names, t.tloss.tolist()))},
    "weights": [str(p) for p in (t.best, t.last) if p.is_file()], "network": network, "outside": outside}))
"""


def _split_scenes(src: Path) -> Dataset:
    """16 train and 8 val scenes under ``src/train`` and ``src/val``, as one dataset with split-prefixed paths."""
    items = default_dataset()
    parts = {split: make_scenes(items, src / split, n, seed=i) for i, (split, n) in
             enumerate((("train", 16), ("val", 8)))}
    return Dataset(
        [replace(info, path=f"{split}/{info.path}") for split, ds in parts.items() for info in ds.images],
        [replace(lab, image=f"{split}/{lab.image}") for split, ds in parts.items() for lab in ds.labels],
        parts["train"].ontology)


def _export_yolo(truth: Dataset, src: Path, out: Path) -> Path:
    """The export a user runs: ``pixlabel convert`` COCO -> YOLO with train/val splits; returns data.yaml."""
    write_coco(truth, out.parent / "truth.coco.json")
    assert main(["-q", "convert", str(src), "--from", "coco", "--labels", str(out.parent / "truth.coco.json"),
                 "--to", "yolo", "--out", str(out)]) == 0
    data_yaml = out / "data.yaml"
    assert "images/val" in data_yaml.read_text()
    return data_yaml


def _train_in_ultralytics(tmp_path: Path, data_yaml: Path, model_yaml: str) -> dict:
    """One epoch of ``YOLO(model_yaml)`` on ``data_yaml`` in a sandboxed child process; what its trainer saw."""
    config = tmp_path / "config"
    # Ultralytics' dataset check wants Arial.ttf and, if it is missing, probes GitHub (requests.head) whatever
    # YOLO_OFFLINE says; a font already in its settings folder ends the search (matplotlib ships DejaVu Sans).
    (config / "Ultralytics").mkdir(parents=True)
    shutil.copy(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf",
                config / "Ultralytics" / "Arial.ttf")
    for d in ("home", "tmp", "mpl"):
        (tmp_path / d).mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp"), "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "XDG_CONFIG_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "home"),
        "YOLO_CONFIG_DIR": str(config),  # settings.json and fonts
        "YOLO_OFFLINE": "1",  # skips the DNS probe at import: no update checks, analytics or hub calls
        "YOLO_AUTOINSTALL": "0",  # never pip-install a missing requirement
        "YOLO_VERBOSE": "0", "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path), str(data_yaml), model_yaml],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["network"] == [], "Ultralytics tried the network"
    assert result["outside"] == [], "Ultralytics wrote outside tmp_path"
    assert result["weights"] and all(Path(w).is_file() and tmp_path in Path(w).parents for w in result["weights"])
    assert (config / "Ultralytics" / "settings.json").is_file()  # its settings went where we told it
    return result


def _needs_ultralytics() -> None:
    """Skip without Ultralytics, but never import it here: importing patches PIL's Image.open for the whole
    test process (it then tries to pip-install pi-heif on any unreadable file)."""
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is not installed (pip install -e '.[dev]')")


@pytest.mark.slow
def test_yolo_export_trains_in_ultralytics(tmp_path: Path) -> None:
    _needs_ultralytics()
    truth = _split_scenes(tmp_path / "src")
    boxes_only = Dataset(truth.images, [replace(lab, mask=None) for lab in truth.labels], truth.ontology)
    data_yaml = _export_yolo(boxes_only, tmp_path / "src", tmp_path / "yolo")
    result = _train_in_ultralytics(tmp_path, data_yaml, "yolov8n.yaml")
    assert result["task"] == "detect" and result["segments"] == 0
    assert result["nc"] == result["model_nc"] == len(truth.ontology) == 10
    assert result["names"] == list(truth.ontology.classes)
    assert (result["train_images"], result["val_images"]) == (16, 8)


@pytest.mark.slow
def test_yolo_seg_export_of_rle_masks_trains_in_ultralytics(tmp_path: Path) -> None:
    """The scenes' RLE masks become one polygon per object, which Ultralytics reads and trains a mask head on."""
    _needs_ultralytics()
    truth = _split_scenes(tmp_path / "src")
    assert all(lab.mask is not None and lab.mask.rle is not None for lab in truth.labels)
    data_yaml = _export_yolo(truth, tmp_path / "src", tmp_path / "yolo")
    result = _train_in_ultralytics(tmp_path, data_yaml, "yolov8n-seg.yaml")
    n_train = sum(lab.image.startswith("train/") for lab in truth.labels)
    assert result["task"] == "segment"
    assert result["nc"] == result["model_nc"] == len(truth.ontology) == 10
    assert result["names"] == list(truth.ontology.classes)
    assert (result["train_images"], result["val_images"]) == (16, 8)
    assert result["instances"] == result["segments"] == n_train  # every object arrived with its polygon
    assert 0 < result["losses"]["seg_loss"] < 100, result["losses"]
