"""Annotation files cannot make pixlabel read outside the image folder: COCO file_name, CSV path, VOC filename
(absolute, '..', Windows drives) are refused with an InputError naming the image entry / row / file, in the
parsers and in the commands built on them (convert, train, label's box seeds); YOLO paths come only from
walking images/, whatever data.yaml says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats.coco import parse_coco, read_coco
from pixlabel.io.formats.csvfmt import parse_labels_csv
from pixlabel.io.formats.voc import parse_voc_xml
from pixlabel.io.formats.yolo import read_yolo

ESCAPES = ["../../etc/passwd", "/etc/passwd", "a/../../secret.png", "C:\\Windows\\win.ini", "C:evil.png"]


def coco(file_name: str) -> dict:
    return {"images": [{"id": 7, "file_name": file_name, "width": 8, "height": 8},
                       {"id": 8, "file_name": "ok.png", "width": 8, "height": 8}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 3, "image_id": 7, "category_id": 1, "bbox": [0, 0, 4, 4]}]}


@pytest.mark.parametrize("escape", ESCAPES)
def test_coco_file_name_outside_the_root_is_refused_naming_the_image(escape: str) -> None:
    with pytest.raises(InputError, match=r"instances\.json image id 7: image path .* must be relative"):
        parse_coco(coco(escape), origin="instances.json")


def test_coco_file_names_are_normalised_inside_the_root() -> None:
    ds = parse_coco(coco("./cats//a.png"), origin="instances.json")
    assert ds.images[0].path == "cats/a.png" and ds.labels[0].image == "cats/a.png"


@pytest.mark.parametrize("escape", ESCAPES)
def test_csv_and_voc_paths_outside_the_root_are_refused(escape: str) -> None:
    with pytest.raises(InputError, match=r"labels\.csv row 3"):
        parse_labels_csv(f"path,label\nok.png,cat\n\"{escape}\",dog\n", origin="labels.csv")
    xml = (f"<annotation><filename>{escape}</filename><size><width>8</width><height>8</height></size>"
           "<object><name>cat</name></object></annotation>")
    with pytest.raises(InputError, match=r"Annotations/x\.xml"):
        parse_voc_xml(xml, origin="Annotations/x.xml")


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def test_convert_and_train_refuse_an_escaping_coco_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pixlabel.cli.main import main

    _png(tmp_path / "images" / "ok.png")
    (tmp_path / "secret.png").write_bytes((tmp_path / "images" / "ok.png").read_bytes())
    labels = tmp_path / "instances.json"
    labels.write_text(json.dumps(coco("../secret.png")))
    with pytest.raises(InputError, match="image id 7"):
        read_coco(labels)
    code = main(["convert", str(tmp_path / "images"), "--from", "coco", "--labels", str(labels), "--to", "csv",
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "image id 7" in capsys.readouterr().err
    assert not (tmp_path / "out" / "secret.png").exists() and not (tmp_path / "out" / "images").exists()
    code = main(["train", str(tmp_path / "images"), "--labels", str(labels), "--out", str(tmp_path / "run"),
                 "--epochs", "1"])
    assert code == 2 and "image id 7" in capsys.readouterr().err


def test_box_seeds_of_label_refuse_an_escaping_coco_file(tmp_path: Path) -> None:
    from pixlabel.pipeline.box_seeds import read_box_seeds

    labels = tmp_path / "seeds.json"
    labels.write_text(json.dumps(coco("/etc/passwd")))
    with pytest.raises(InputError, match="image id 7"):
        read_box_seeds(labels)


def test_yolo_reads_only_what_is_under_images(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _png(root / "images" / "train" / "a.png")
    _png(tmp_path / "outside" / "b.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(f"path: {tmp_path / 'outside'}\ntrain: ../outside\nval: /etc\nnames: [cat]\n")
    ds = read_yolo(root)
    assert [i.path for i in ds.images] == ["train/a.png"] and [lab.image for lab in ds.labels] == ["train/a.png"]
