import json

import pytest
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.io.convert import FORMATS, convert
from pixlabel.io.formats._common import FormatWarning
from pixlabel.io.formats.coco import read_coco
from pixlabel.io.formats.csvfmt import read_labels_csv


@pytest.fixture
def coco_dataset(tmp_path):
    """Three PNGs of different sizes and a COCO file with one box that pokes out of its image."""
    src = tmp_path / "photos"
    sizes = {"a.png": (64, 48), "sub/b.png": (30, 90), "c.png": (16, 16)}
    for rel, (w, h) in sizes.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (10, 20, 30)).save(src / rel)
    data = {
        "images": [{"id": i, "file_name": rel, "width": w, "height": h}
                   for i, (rel, (w, h)) in enumerate(sizes.items(), start=1)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.5, 3, 20, 10.75]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 30, 24, 18], "score": 0.6},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [1, 80, 20, 20]},  # 10 px below the image
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(data))
    return src, tmp_path / "instances.json"


def boxes(dataset):
    return sorted((lab.image, lab.label, *lab.box.xywh) for lab in dataset.labels)


def test_coco_to_yolo_to_voc_to_coco_end_to_end(coco_dataset, tmp_path, capsys):
    src, instances = coco_dataset
    code = main(["convert", str(src), "--from", "coco", "--labels", str(instances), "--to", "yolo",
                 "--out", str(tmp_path / "yolo")])
    captured = capsys.readouterr()
    assert code == 0
    assert "converted coco -> yolo: 3 images, 3 labels (3 box), 2 classes, 2 warning(s)" in captured.out
    assert "annotation id 3: bbox [1, 80, 20, 20] clipped" in captured.err
    assert "yolo cannot store confidences: 1 label(s)" in captured.err
    assert (tmp_path / "yolo" / "labels" / "sub" / "b.txt").is_file()
    assert (tmp_path / "yolo" / "images" / "c.png").is_file() and (tmp_path / "yolo" / "data.yaml").is_file()

    assert main(["convert", str(tmp_path / "yolo"), "--from", "yolo", "--to", "voc",
                 "--out", str(tmp_path / "voc")]) == 0
    assert main(["convert", str(tmp_path / "voc"), "--from", "voc", "--to", "coco",
                 "--out", str(tmp_path / "coco")]) == 0
    final = read_coco(tmp_path / "coco" / "annotations.json")
    with pytest.warns(FormatWarning, match="annotation id 3"):
        expected = read_coco(instances)
    assert [b[:2] for b in boxes(final)] == [b[:2] for b in boxes(expected)]
    assert all(abs(x - y) < 1e-3 for f, e in zip(boxes(final), boxes(expected), strict=True)
               for x, y in zip(f[2:], e[2:], strict=True))
    assert {i.path: i.image_size for i in final.images} == {i.path: i.image_size for i in expected.images}
    assert (tmp_path / "coco" / "images" / "sub" / "b.png").is_file()


def test_csv_and_imagefolder_round_trip(tmp_path, capsys):
    src = tmp_path / "imgs"
    for rel in ("cat/1.png", "dog/2.png", "3.png"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(src / rel)
    to_csv = ["convert", str(src), "--from", "imagefolder", "--to", "csv", "--out", str(tmp_path / "c")]
    assert main(to_csv) == 0
    ds = read_labels_csv(tmp_path / "c" / "labels.csv")
    assert sorted((lab.image, lab.label) for lab in ds.labels) == [("cat/1.png", "cat"), ("dog/2.png", "dog")]
    assert "3.png" in {i.path for i in ds.images}
    labels_csv = str(tmp_path / "c" / "labels.csv")
    assert main(["convert", str(tmp_path / "c" / "images"), "--from", "csv", "--labels", labels_csv,
                 "--to", "imagefolder", "--out", str(tmp_path / "f")]) == 0
    written = sorted(p.relative_to(tmp_path / "f").as_posix() for p in (tmp_path / "f").rglob("*.png"))
    assert written == ["3.png", "cat/1.png", "dog/2.png"]
    assert "3 images, 2 labels (2 class), 2 classes, 0 warning(s)" in capsys.readouterr().out


def test_class_only_labels_cannot_become_yolo(tmp_path, capsys):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "cat" / "1.png")
    code = main(["convert", str(tmp_path / "imgs"), "--from", "imagefolder", "--to", "yolo",
                 "--out", str(tmp_path / "y")])
    assert code == 2
    assert "write class labels with --to imagefolder or --to csv" in capsys.readouterr().err
    assert list((tmp_path / "y").iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "coco", "--to", "yolo"], "--from coco needs --labels FILE"),
        (["--from", "yolo", "--labels", "x.json", "--to", "voc"],
         "--labels is only for --from csv, coco, label-studio or cvat"),
    ],
)
def test_usage_errors_exit_2_with_a_message(coco_dataset, tmp_path, capsys, argv, message):
    src, _ = coco_dataset
    assert main(["convert", str(src), *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_refuses_non_empty_output_and_missing_images(coco_dataset, tmp_path, capsys):
    src, instances = coco_dataset
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    args = ["convert", str(src), "--from", "coco", "--labels", str(instances), "--to", "voc"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 2
    assert "must be new or empty" in capsys.readouterr().err
    (src / "c.png").unlink()
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "1 image(s) named in the labels are not under" in capsys.readouterr().err


def test_unknown_format_lists_known_ones(tmp_path):
    with pytest.raises(InputError, match="unknown format 'labelme'; known: " + ", ".join(FORMATS)):
        convert(tmp_path, src_format="labelme", dst_format="coco", out=tmp_path / "o")
    with pytest.raises(SystemExit):  # argparse rejects it before the library sees it
        main(["convert", str(tmp_path), "--from", "labelme", "--to", "coco", "--out", str(tmp_path / "o")])


def test_lossy_targets_say_what_they_drop(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "imgs" / "a.png")
    polygon = [1, 1, 15, 1, 15, 8]
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon]}]}
    (tmp_path / "in.json").write_text(json.dumps(data))
    base = ["convert", str(tmp_path / "imgs"), "--from", "coco", "--labels", str(tmp_path / "in.json")]
    assert main([*base, "--to", "voc", "--out", str(tmp_path / "voc")]) == 0
    assert "voc cannot store masks: 1 label(s) lose theirs" in capsys.readouterr().err
    assert main([*base, "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0  # one polygon: a segment
    assert "0 warning(s)" in capsys.readouterr().out
    assert (tmp_path / "yolo" / "labels" / "a.txt").read_text() == "0 0.05 0.1 0.75 0.1 0.75 0.8\n"
