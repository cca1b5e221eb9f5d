import json

import pytest
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats._common import FormatWarning, with_image_sizes
from pixlabel.io.formats.coco import format_coco, read_coco
from pixlabel.io.formats.voc import format_voc_xml, parse_voc_xml, read_voc, write_voc
from pixlabel.records import Box, ImageInfo, Label


def voc(objects, *, size="<size><width>40</width><height>30</height><depth>3</depth></size>"):
    return f"<annotation><folder>VOC</folder><filename>a.jpg</filename>{size}{objects}</annotation>"


def obj(name, xmin, ymin, xmax, ymax, extra=""):
    return (f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_parse_converts_one_based_corners():
    info, labels = parse_voc_xml(
        voc(obj("cat", 1, 1, 40, 30) + obj("dog", 11.5, 3, 20, 9, "<difficult>1</difficult>")
            + "<object><name>bird</name></object>"), origin="Annotations/a.xml")
    assert (info.path, info.image_size) == ("a.jpg", (30, 40))
    assert [lab.label for lab in labels] == ["cat", "dog", "bird"]
    assert labels[0].box == Box(0, 0, 40, 30, image_size=(30, 40))  # the whole image
    assert labels[1].box == Box(10.5, 2, 20, 9, image_size=(30, 40))
    assert labels[2].box is None and all(lab.source == "human" for lab in labels)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotation><filename>a.jpg", "a.xml: not valid XML"),
        ("<image/>", "a.xml: expected an <annotation> root element, got <image>"),
        (voc("").replace("<filename>a.jpg</filename>", ""), "a.xml: missing <filename>"),
        (voc("", size="<size><width>40</width></size>"), "a.xml: <size> needs <width> and <height>"),
        (voc(obj("cat", 1, 1, 5, 5) + "<object><bndbox/></object>"), "a.xml object 2: missing <name>"),
        (voc(obj("cat", "left", 1, 5, 5)), "a.xml object 1: bndbox/xmin must be a number, got 'left'"),
        (voc(obj("cat", 9, 1, 5, 5)), "a.xml object 1: bndbox corners out of order"),
    ],
)
def test_malformed_xml_names_file_and_object(text, message):
    with pytest.raises(InputError, match=message):
        parse_voc_xml(text, origin="a.xml")


def test_boxes_outside_clipped_and_empty_dropped_with_warning():
    with pytest.warns(FormatWarning) as record:
        _, labels = parse_voc_xml(voc(obj("cat", -4, 1, 50, 30) + obj("dog", 45, 1, 48, 5)), origin="a.xml")
    assert [lab.box for lab in labels] == [Box(0, 0, 40, 30, image_size=(30, 40))]
    assert "a.xml object 1: bndbox clipped" in str(record[0].message)
    assert "a.xml object 2: dropped" in str(record[1].message)


def test_format_then_parse_is_exact():
    size = (30, 40)
    labels = [Label("sub/a.jpg", "cat", box=Box(0, 0, 40, 30, image_size=size)),
              Label("sub/a.jpg", "dog", box=Box(2.25, 3.5, 17.125, 9, image_size=size))]
    text = format_voc_xml(ImageInfo("sub/a.jpg", size), labels, depth=1)
    assert "<xmin>1</xmin>" in text and "<xmin>3.25</xmin>" in text and "<depth>1</depth>" in text
    info, again = parse_voc_xml(text, origin="x.xml")
    assert info == ImageInfo("sub/a.jpg", size)
    assert [(lab.label, lab.box) for lab in again] == [(lab.label, lab.box) for lab in labels]


def test_format_refuses_class_only_labels():
    with pytest.raises(InputError, match="a.jpg: label 'cat' has no box.*--to imagefolder"):
        format_voc_xml(ImageInfo("a.jpg", (3, 4)), [Label("a.jpg", "cat")])


def test_coco_to_voc_to_coco_keeps_boxes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (40, 30)).save(src / "a.jpg")
    Image.new("L", (25, 50)).save(src / "b.png")
    Image.new("RGB", (10, 10)).save(src / "unlabeled.png")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                   {"id": 2, "file_name": "b.png", "width": 25, "height": 50},
                   {"id": 3, "file_name": "unlabeled.png", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 40, 30]},
                        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [3.5, 4.25, 10, 7.125]},
                        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(data))
    write_voc(read_coco(tmp_path / "instances.json"), src, tmp_path / "voc")
    assert (tmp_path / "voc" / "JPEGImages" / "unlabeled.png").is_file()
    assert not (tmp_path / "voc" / "Annotations" / "unlabeled.xml").exists()
    assert (tmp_path / "voc" / "ImageSets" / "Main" / "trainval.txt").read_text().split() == ["a", "b"]
    assert "<depth>1</depth>" in (tmp_path / "voc" / "Annotations" / "b.xml").read_text()
    back = format_coco(with_image_sizes(read_voc(tmp_path / "voc"), tmp_path / "voc" / "JPEGImages"))
    files = {i["id"]: (i["file_name"], i["width"], i["height"]) for i in back["images"]}
    cats = {c["id"]: c["name"] for c in back["categories"]}
    got = sorted((files[a["image_id"]][0], cats[a["category_id"]], a["bbox"]) for a in back["annotations"])
    assert got == [("a.jpg", "cat", [3.5, 4.25, 10.0, 7.125]), ("a.jpg", "dog", [0.0, 0.0, 40.0, 30.0]),
                   ("b.png", "cat", [1.0, 2.0, 3.0, 4.0])]
    assert sorted(files.values()) == [("a.jpg", 40, 30), ("b.png", 25, 50), ("unlabeled.png", 10, 10)]


def test_read_xml_beside_images_and_duplicate_annotations(tmp_path):
    (tmp_path / "shots").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "shots" / "a.jpg")
    (tmp_path / "shots" / "a.xml").write_text(voc(obj("cat", 1, 1, 10, 10)))
    ds = read_voc(tmp_path)
    assert [i.path for i in ds.images] == ["shots/a.jpg"] and ds.labels[0].image == "shots/a.jpg"
    (tmp_path / "shots" / "copy.xml").write_text(voc(""))
    with pytest.raises(InputError, match="shots/copy.xml: image shots/a.jpg is also annotated by shots/a"):
        read_voc(tmp_path)


def test_read_empty_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no VOC annotations found"):
        read_voc(tmp_path)
