import json
import random
import warnings

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as cocomask
from scipy import ndimage

from pixlabel.datasets import default_dataset
from pixlabel.detect.scenes import make_scenes
from pixlabel.errors import InputError
from pixlabel.io.convert import convert
from pixlabel.io.formats._common import FormatWarning, read_image_size
from pixlabel.io.formats._masks import mask_bitmap, mask_outlines, mask_polygon
from pixlabel.io.formats.coco import format_coco, read_coco, write_coco
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


# --- masks as YOLO segments: RLE and multi-part masks become one polygon per object -------------------------------

def rle_mask(bitmap):
    """A pixlabel RLE Mask of a (h, w) 0/1 array."""
    rle = cocomask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
    return Mask(bitmap.shape, rle={"size": list(bitmap.shape), "counts": rle["counts"].decode("ascii")})


def disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def as_bitmap(polygon, image_size):
    """The polygon rasterised as COCO evaluates it (pycocotools)."""
    return mask_bitmap(Mask(image_size, polygons=(polygon,)))


@pytest.mark.parametrize("radius", [3, 10, 25])
def test_disc_rle_becomes_one_small_polygon_that_rasterises_back(radius):
    bitmap = disc(64, 80, 30.3, 41.7, radius)
    polygon = mask_polygon(rle_mask(bitmap))
    back = as_bitmap(polygon, (64, 80))
    assert iou(back, bitmap) >= 0.97  # an outline through the boundary pixel centres scores 0.70 at radius 3
    boundary_pixels = bitmap.sum() - ndimage.binary_erosion(bitmap).sum()
    assert len(polygon) // 2 < boundary_pixels  # simplified: marching squares traces ~2 vertices per boundary pixel


def test_two_part_mask_becomes_one_polygon_covering_both_parts():
    left, right = disc(60, 90, 20, 15, 9), disc(60, 90, 40, 70, 12)
    both = left | right
    polygon = mask_polygon(rle_mask(both))
    back = as_bitmap(polygon, (60, 90))
    assert iou(back, both) >= 0.97
    assert iou(back & left, left) >= 0.97 and iou(back & right, right) >= 0.97  # no part dropped
    assert (back & ~both.astype(bool)).sum() <= 2  # the bridge between the parts has no area
    # the larger part leads and the smaller one is spliced in: the ring starts on the right disc
    xs = polygon[0::2]
    assert xs[0] > 45 and min(xs) < 10 and max(xs) > 80


def test_holes_stay_empty_and_diagonal_pixels_join():
    ring = disc(40, 40, 20, 20, 15) & ~disc(40, 40, 20, 20, 8).astype(bool)
    ring[20, 20] = 1  # an island in the hole
    assert len(mask_outlines(ring)) == 3  # outer outline, hole, island
    back = as_bitmap(mask_polygon(rle_mask(ring)), (40, 40))
    assert iou(back, ring) >= 0.97 and back[20, 20] == 1 and back[20, 25] == 0  # island filled, hole empty
    diagonal = np.zeros((6, 6), np.uint8)
    diagonal[1, 1] = diagonal[2, 2] = 1
    assert len(mask_outlines(diagonal)) == 1  # 8-connected: one part
    diagonal[4, 4] = 1
    assert [len(o) >= 3 for o in mask_outlines(diagonal)] == [True, True]  # a single pixel still has an outline
    assert np.array_equal(as_bitmap(mask_polygon(rle_mask(diagonal)), (6, 6)), diagonal)
    assert mask_outlines(np.zeros((4, 4), np.uint8)) == []


def test_several_polygons_merge_and_one_polygon_is_kept_exactly():
    first, second = (1.0, 1.0, 9.0, 1.0, 9.0, 9.0, 1.0, 9.0), (20.0, 3.0, 28.0, 3.0, 24.0, 12.0)
    assert mask_polygon(Mask((30, 30), polygons=(second,))) == second
    merged = mask_polygon(Mask((30, 30), polygons=(first, second)))
    assert len(merged) == len(first) + len(second) + 4  # both rings plus a bridge walked there and back
    union = mask_bitmap(Mask((30, 30), polygons=(first, second)))
    assert np.array_equal(as_bitmap(merged, (30, 30)), union)


def test_masks_write_segments_and_empty_masks_are_dropped_with_a_warning():
    size = (20, 30)
    full = Label("a.png", "cat", mask=rle_mask(disc(20, 30, 10, 10, 5)))
    empty = Label("a.png", "dog", mask=rle_mask(np.zeros(size, np.uint8)))
    with pytest.warns(FormatWarning, match="a.png: label 'dog' dropped, its mask is empty"):
        (line,) = format_yolo_lines([full, empty], image_size=size, ontology=ONTO, segments=True)
    assert line.split()[0] == "0" and len(line.split()) >= 7
    with pytest.raises(InputError, match="label 'cat' needs a mask to be written as a YOLO segment"):
        format_yolo_lines([Label("a.png", "cat", box=Box(1, 1, 5, 5, image_size=size))], image_size=size,
                          ontology=ONTO, segments=True)


def test_coco_rle_to_yolo_seg_round_trip_keeps_every_mask(tmp_path):
    """Generated scenes of Fashion-MNIST items carry RLE masks, some cut in parts by the items pasted over them,
    many with holes where an item is dark."""
    truth = make_scenes(default_dataset(), tmp_path / "src", 16, seed=5)
    assert sum(len(mask_outlines(mask_bitmap(lab.mask))) > 1 for lab in truth.labels) >= 10
    write_coco(truth, tmp_path / "truth.coco.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)  # "yolo cannot store masks" would fail here
        convert(tmp_path / "src", src_format="coco", labels_file=tmp_path / "truth.coco.json", dst_format="yolo",
                out=tmp_path / "yolo")
    back = read_yolo(tmp_path / "yolo")
    before, after = truth.labels_by_image(), back.labels_by_image()
    assert sorted(after) == sorted(before) and len(back.labels) == len(truth.labels) >= 16
    scores = []
    for image, labels in before.items():
        for old, new in zip(labels, after[image], strict=True):
            assert new.label == old.label and len(new.mask.polygons) == 1
            scores.append(iou(mask_bitmap(new.mask), mask_bitmap(old.mask)))
    assert min(scores) >= 0.95, sorted(scores)[:3]
