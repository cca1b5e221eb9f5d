import json
import random

import pytest
import yaml
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats._common import FormatWarning, read_image_size
from pixlabel.io.formats.coco import format_coco, read_coco
from pixlabel.io.formats.yolo import (
    format_yolo_lines,
    parse_data_yaml,
    parse_yolo_lines,
    read_yolo,
    write_yolo,
)
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology

ONTO = Ontology(("cat", "dog", "bird"))


def parse(lines, size=(100, 200)):
    return parse_yolo_lines(lines, image="img3.jpg", image_size=size, ontology=ONTO, origin="labels/img3.txt")


def test_parse_detection_confidence_and_polygon_lines():
    labels = parse(["0 0.5 0.5 0.2 0.4", "", "2 0.25 0.5 0.1 0.2 0.9", "1 0.1 0.1 0.5 0.1 0.3 0.6"])
    det, pred, seg = labels
    assert (det.label, det.box, det.source, det.confidence) == (
        "cat", Box(80, 30, 120, 70, image_size=(100, 200)), "human", 1.0)
    assert (pred.label, pred.source, pred.confidence) == ("bird", "model", 0.9)
    assert pred.box == Box(40, 40, 60, 60, image_size=(100, 200))
    assert seg.label == "dog" and seg.mask == Mask((100, 200), polygons=((20, 10, 100, 10, 60, 60),))
    assert seg.box == Box(20, 10, 100, 60, image_size=(100, 200))  # the box is the polygon's bounds


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5", r"line 4: expected 5 numbers \(class cx cy w h\) or a polygon .*, got 3"),
        ("0 0.1 0.1 0.5 0.1 0.3 0.6 0.2", "line 4: expected 5 numbers .*got 8"),
        ("3 0.5 0.5 0.1 0.1", r"line 4: class 3 is not in data.yaml names \(0..2\)"),
        ("0.5 0.5 0.5 0.1 0.1", "line 4: class 0.5 is not in data.yaml names"),
        ("0 0.5 x 0.1 0.1", "line 4: 'x' is not a number"),
        ("0 0.5 0.5 -0.1 0.1", "line 4: box width and height must be >= 0"),
        ("0 0.5 0.5 0.1 0.1 1.5", "line 4: confidence must be from 0 to 1"),
    ],
)
def test_malformed_lines_name_file_and_line(line, message):
    with pytest.raises(InputError, match="labels/img3.txt " + message):
        parse(["0 0.5 0.5 0.1 0.1", "1 0.5 0.5 0.1 0.1", "", line])


def test_out_of_image_boxes_are_clipped_and_empty_ones_dropped():
    with pytest.warns(FormatWarning) as record:
        labels = parse(["0 0.95 0.5 0.2 0.2", "1 0.5 0.5 0 0.3"])
    assert [lab.box for lab in labels] == [Box(170, 40, 200, 60, image_size=(100, 200))]
    assert "line 1: box clipped" in str(record[0].message) and "line 2: dropped" in str(record[1].message)


def test_format_lines_eight_decimals_and_segments():
    box = Box(10, 20, 43, 77, image_size=(100, 300))
    poly = Label("a.jpg", "dog", mask=Mask((100, 300), polygons=((0, 0, 150, 0, 150, 50),)), box=box)
    assert format_yolo_lines([Label("a.jpg", "dog", box=box)], image_size=(100, 300), ontology=ONTO) == [
        "1 0.08833333 0.485 0.11 0.57"]
    assert format_yolo_lines([poly], image_size=(100, 300), ontology=ONTO, segments=True) == [
        "1 0 0 0.5 0 0.5 0.5"]


def test_format_refuses_class_only_and_unknown_class():
    with pytest.raises(InputError, match="YOLO detection needs boxes.*--to imagefolder or --to csv"):
        format_yolo_lines([Label("a.jpg", "cat")], image_size=(10, 10), ontology=ONTO)
    with pytest.raises(InputError, match="a.jpg: unknown class 'cow'"):
        format_yolo_lines([Label("a.jpg", "cow", box=Box(0, 0, 1, 1, image_size=(10, 10)))],
                          image_size=(10, 10), ontology=ONTO)


def test_data_yaml_names_list_or_id_mapping():
    assert parse_data_yaml("names: [a, b]", origin="data.yaml").classes == ("a", "b")
    assert parse_data_yaml("names:\n  1: b\n  0: a\n", origin="data.yaml").classes == ("a", "b")
    with pytest.raises(InputError, match="data.yaml: names keys must be the class ids 0..1, got 0, 2"):
        parse_data_yaml("names: {0: a, 2: b}", origin="data.yaml")
    with pytest.raises(InputError, match="data.yaml: needs 'names'"):
        parse_data_yaml("nc: 3", origin="data.yaml")


def make_images(root, sizes):
    for name, (w, h) in sizes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (200, 100, 50)).save(root / name)


def random_coco(sizes, *, seed):
    rng = random.Random(seed)
    images, annotations = [], []
    for image_id, (name, (w, h)) in enumerate(sizes.items(), start=1):
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for _ in range(4):
            x, y = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
            bw, bh = rng.uniform(1, w - x), rng.uniform(1, h - y)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": rng.choice([4, 9]), "bbox": [x, y, bw, bh]})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 9, "name": "dog"}, {"id": 4, "name": "cat"}]}


def test_coco_to_yolo_to_coco_keeps_every_box_to_the_pixel(tmp_path):
    sizes = {"train/a.png": (37, 53), "train/b.png": (640, 480), "val/c.png": (4000, 30), "d.png": (5, 900)}
    make_images(tmp_path / "src", sizes)
    (tmp_path / "instances.json").write_text(json.dumps(random_coco(sizes, seed=3)))
    original = read_coco(tmp_path / "instances.json")
    write_yolo(original, tmp_path / "src", tmp_path / "yolo")
    data_yaml = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data_yaml["names"] == ["cat", "dog"] and data_yaml["train"] == "images/train"
    assert data_yaml["val"] == "images/val"
    back = read_yolo(tmp_path / "yolo")
    assert sorted(i.path for i in back.images) == sorted(sizes)
    before, after = format_coco(original), format_coco(back)
    names = {i["id"]: i["file_name"] for i in before["images"]}
    names_after = {i["id"]: i["file_name"] for i in after["images"]}

    def boxes(data, files):
        return sorted((files[a["image_id"]], a["category_id"], *a["bbox"]) for a in data["annotations"])

    pairs = list(zip(boxes(before, names), boxes(after, names_after), strict=True))
    assert len(pairs) == 16
    assert all(x[:2] == y[:2] for x, y in pairs)
    worst = max(abs(a - b) for x, y in pairs for a, b in zip(x[2:], y[2:], strict=True))
    assert worst < 1e-3


def test_polygons_round_trip_as_segments(tmp_path):
    make_images(tmp_path / "src", {"a.png": (50, 40)})
    polygon = (5.5, 4.0, 40.25, 4.0, 30.0, 35.0)
    label = Label("a.png", "bird", mask=Mask((40, 50), polygons=(polygon,)))
    ds = Dataset([ImageInfo("a.png")], [label], ONTO)
    write_yolo(ds, tmp_path / "src", tmp_path / "out")
    assert len((tmp_path / "out" / "labels" / "a.txt").read_text().split()) == 7  # class + 3 points
    back = read_yolo(tmp_path / "out")
    (mask,) = back.labels[0].mask.polygons
    assert max(abs(a - b) for a, b in zip(mask, polygon, strict=True)) < 1e-3


def test_write_refuses_class_only_labels_before_writing_anything(tmp_path):
    make_images(tmp_path / "src", {"a.png": (8, 8)})
    ds = Dataset([ImageInfo("a.png")], [Label("a.png", "cat")], ONTO)
    with pytest.raises(InputError, match="imagefolder or --to csv"):
        write_yolo(ds, tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_yolo_unlabeled_images_confidence_and_missing_yaml(tmp_path):
    root = tmp_path / "ds"
    make_images(root / "images", {"a.png": (20, 10), "b.png": (20, 10)})
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5 0.8\n")
    (root / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    with pytest.raises(InputError, match="needs data.yaml"):
        read_yolo(root)
    (root / "data.yaml").write_text("names: {0: cat, 1: dog}\n")
    with pytest.warns(FormatWarning, match="1 label file.*have no image"):
        ds = read_yolo(root)
    assert [(i.path, i.image_size) for i in ds.images] == [("a.png", (10, 20)), ("b.png", None)]
    (lab,) = ds.labels
    assert (lab.label, lab.source, lab.confidence) == ("dog", "model", 0.8)
    assert lab.box == Box(5, 2.5, 15, 7.5, image_size=(10, 20))


def test_image_size_follows_exif_rotation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when displayed
    Image.new("RGB", (30, 10)).save(tmp_path / "r.jpg", exif=exif)
    Image.new("RGB", (30, 10)).save(tmp_path / "p.jpg")
    assert read_image_size(tmp_path / "r.jpg") == (30, 10)
    assert read_image_size(tmp_path / "p.jpg") == (10, 30)


def test_unreadable_image_is_skipped_with_its_labels(tmp_path):
    make_images(tmp_path / "images", {"ok.png": (10, 10)})
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "labels").mkdir()
    for stem in ("ok", "broken"):
        (tmp_path / "labels" / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("names: [cat]\n")
    with pytest.warns(FormatWarning, match="broken.png: skipped with its labels"):
        ds = read_yolo(tmp_path)
    assert [i.path for i in ds.images] == ["ok.png"] and [lab.image for lab in ds.labels] == ["ok.png"]
