"""``pixlabel export MODEL --int8`` without ``--calib`` calibrates on the model's own training images."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.export import ExportOptions, export_model
from pixlabel.export.calib import training_images
from pixlabel.export.demo_model import train_smallcnn
from pixlabel.models import save_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SmallCNN on 120 Fashion-MNIST images, with the training record pixlabel train leaves: config.yaml
    names the image root, split.csv has 90 train rows, 30 val rows and 5 synthetic train rows."""
    from pixlabel.datasets import fashion_mnist

    fm = fashion_mnist()
    root = tmp_path_factory.mktemp("run")
    images = root / "images"
    rows = []
    for i in range(120):
        rel = f"{fm.classes[fm.labels[i]]}/{i}.png"
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fm.images[i]).save(images / rel)
        rows.append([rel, fm.classes[fm.labels[i]], "train" if i < 90 else "val", "human"])
    rows += [[f"syn/{i}.png", fm.classes[0], "train", "synthetic"] for i in range(5)]
    torch.manual_seed(0)
    net, spec = train_smallcnn(fm.images[:90], fm.labels[:90], fm.classes, epochs=1, width=8)
    model = save_model(root / "model", net, spec)
    (model / "config.yaml").write_text(yaml.safe_dump({"images": str(images), "out": str(model)}))
    with (model / "split.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label", "split", "source"], *rows])
    return model, images


def test_training_images_are_the_real_train_rows(trained):
    model, images = trained
    root, paths = training_images(model)
    assert root == images and len(paths) == 90
    assert not any(p.startswith("syn/") for p in paths)
    assert all(int(p.rsplit("/", 1)[1][:-4]) < 90 for p in paths)  # no validation image


def test_missing_record_names_what_to_pass(tmp_path):
    with pytest.raises(InputError, match="--int8 needs calibration images: pass --calib DIR.*no training record"):
        training_images(tmp_path)
    (tmp_path / "config.yaml").write_text("images: /nowhere/at/all\n")
    (tmp_path / "split.csv").write_text("path,label,split,source\na.png,x,train,human\n")
    with pytest.raises(InputError, match="trained on images in /nowhere/at/all, which is not a folder here"):
        training_images(tmp_path)


@pytest.mark.slow
def test_int8_export_without_calib_uses_the_training_images(trained, tmp_path, capsys):
    model, images = trained
    rep = export_model(model, tmp_path / "m.int8.onnx", ExportOptions(int8=True, calib_count=64, verify_count=32))
    assert rep.int8 and rep.verified_on == f"32 of the model's training images from {images}"
    assert rep.top1_agreement >= 0.9
    assert main(["export", str(model), "--format", "onnx", "--int8", "--out", str(tmp_path / "cli.onnx")]) == 0
    assert "of the model's training images" in capsys.readouterr().out
