import json

import numpy as np
import pytest
from pycocotools import mask as cocomask

from pixlabel.errors import InputError
from pixlabel.io.formats._common import FormatWarning
from pixlabel.io.formats.coco import format_coco, parse_coco, read_coco, write_coco
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance


def coco(annotations, *, images=None, categories=None):
    return {
        "images": images or [{"id": 12, "file_name": "a.jpg", "width": 40, "height": 30},
                             {"id": 5, "file_name": "sub/b.png", "width": 20, "height": 10}],
        "categories": categories or [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": annotations,
    }


def test_parse_boxes_categories_by_name_and_scores():
    ds = parse_coco(coco([
        {"id": 1, "image_id": 12, "category_id": 7, "bbox": [1, 2, 10, 5]},
        {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0.5, 0, 4, 4], "score": 0.75},
    ]), origin="instances.json")
    assert ds.ontology.classes == ("cat", "dog")  # ordered by category id, ids themselves forgotten
    assert [(i.path, i.image_size, i.image_id) for i in ds.images] == [("a.jpg", (30, 40), 12),
                                                                       ("sub/b.png", (10, 20), 5)]
    first, second = ds.labels
    assert (first.image, first.label, first.source) == ("a.jpg", "dog", "human")
    assert first.box.xywh == (1, 2, 10, 5)
    assert first.box.image_size == (30, 40) and first.confidence == 1.0
    assert (second.label, second.source, second.confidence) == ("cat", "model", 0.75)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"id": 57, "image_id": 99, "category_id": 3, "bbox": [1, 2, 3, 4]},
         "annotation id 57: unknown image_id 99"),
        ({"id": 57, "image_id": 12, "category_id": 3, "bbox": [1, 2]},
         r"annotation id 57: bbox must be 4 numbers \[x, y, w, h\], got \[1, 2\]"),
        ({"id": 57, "image_id": 12, "category_id": 3, "bbox": [1, 2, "3", 4]},
         "annotation id 57: bbox must be"),
        ({"id": 57, "image_id": 12, "category_id": 3, "bbox": [1, 2, -3, 4]},
         r"annotation id 57: bbox width and height must be >= 0, got \[1, 2, -3, 4\]"),
        ({"id": 57, "image_id": 12, "category_id": 4, "bbox": [1, 2, 3, 4]},
         "annotation id 57: unknown category_id 4; known: 3, 7"),
        ({"id": 57, "image_id": 12, "category_id": 3}, "annotation id 57: needs a bbox"),
        ({"id": 57, "image_id": 12, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 2},
         "annotation id 57: score must be a number from 0 to 1"),
        ({"id": 57, "image_id": 12, "category_id": 3, "segmentation": [[1, 2, 3, 4, 5]]},
         "annotation id 57: segmentation polygon 0 must be an even number"),
        ({"id": 57, "image_id": 12, "category_id": 3, "segmentation": {"size": [40, 30], "counts": "abc"}},
         r"annotation id 57: RLE size \[40, 30\] differs from the image \[h, w\] \[30, 40\]"),
        ({"id": 57, "image_id": 12, "category_id": 3, "segmentation": {"size": [30, 40], "counts": [5, 5]}},
         "annotation id 57: uncompressed RLE counts must be whole numbers >= 0 summing to h\\*w = 1200"),
        ({"image_id": 12, "category_id": 3, "bbox": [1]}, r"annotations\[0\]: bbox must be"),
    ],
)
def test_malformed_annotations_name_the_annotation(annotation, message):
    with pytest.raises(InputError, match="instances.json " + message):
        parse_coco(coco([annotation]), origin="instances.json")


def test_malformed_file_structure():
    with pytest.raises(InputError, match="instances.json: 'images' must be a list, got nothing"):
        parse_coco({"categories": []}, origin="instances.json")
    with pytest.raises(InputError, match="instances.json image id 4: width and height must be whole numbers"):
        parse_coco({"images": [{"id": 4, "file_name": "a.jpg", "width": 0, "height": 3}], "categories": []},
                   origin="instances.json")
    with pytest.raises(InputError, match="category id 1: used twice"):
        parse_coco(coco([], categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]), origin="x.json")


def test_boxes_outside_are_clipped_and_zero_area_dropped_with_warnings():
    with pytest.warns(FormatWarning) as record:
        ds = parse_coco(coco([
            {"id": 8, "image_id": 12, "category_id": 3, "bbox": [-5, 20, 20, 20]},
            {"id": 9, "image_id": 12, "category_id": 3, "bbox": [45, 0, 5, 5]},
            {"id": 10, "image_id": 12, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        ]), origin="instances.json")
    messages = [str(w.message) for w in record]
    assert any("annotation id 8: bbox [-5, 20, 20, 20] clipped to the 40x30 image" in m for m in messages)
    assert any("annotation id 9: dropped" in m for m in messages)
    assert any("skipped 1 crowd annotation" in m for m in messages)
    assert len(ds.labels) == 1 and ds.labels[0].box == Box(0.0, 20, 15, 30, image_size=(30, 40))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2, not our code
def test_rle_compressed_and_uncompressed_decode_to_pycocotools_area():
    pixels = np.zeros((30, 40), dtype=np.uint8, order="F")
    pixels[3:9, 5:17] = 1
    pixels[20:22, 30:39] = 1
    compressed = cocomask.encode(pixels)
    compressed["counts"] = compressed["counts"].decode("ascii")
    flat = pixels.flatten(order="F").tolist()
    runs, current, length = [], 0, 0
    for value in flat:  # column-major run lengths starting with zeros, as COCO's uncompressed RLE
        if value != current:
            runs.append(length)
            current, length = value, 0
        length += 1
    runs.append(length)
    ds = parse_coco(coco([
        {"id": 1, "image_id": 12, "category_id": 3, "segmentation": compressed},
        {"id": 2, "image_id": 12, "category_id": 3, "segmentation": {"size": [30, 40], "counts": runs}},
    ]), origin="instances.json")
    out = format_coco(ds)
    for label, ann in zip(ds.labels, out["annotations"], strict=True):
        assert label.mask is not None and label.mask.rle is not None
        assert ann["area"] == float(cocomask.area(compressed)) == pixels.sum()
        assert ann["bbox"] == [5.0, 3.0, 34.0, 19.0]  # box derived from the mask when bbox is absent
        decoded = cocomask.decode({"size": ann["segmentation"]["size"],
                                   "counts": ann["segmentation"]["counts"].encode("ascii")})
        assert np.array_equal(decoded, pixels)


def test_polygon_segmentation_area_matches_pycocotools():
    polygon = [2.0, 2.0, 30.0, 2.0, 30.0, 20.0, 2.0, 20.0]
    ds = parse_coco(coco([{"id": 1, "image_id": 12, "category_id": 7, "segmentation": [polygon],
                           "bbox": [2, 2, 28, 18]}]), origin="instances.json")
    assert ds.labels[0].mask == Mask((30, 40), polygons=(tuple(polygon),))
    ann = format_coco(ds)["annotations"][0]
    expected = cocomask.area(cocomask.merge(cocomask.frPyObjects([polygon], 30, 40)))
    assert ann["area"] == float(expected) and ann["segmentation"] == [polygon]


def test_format_preserves_image_ids_numbers_categories_and_writes_scores():
    onto = Ontology(("cat", "dog"))
    box = Box(1, 2, 11, 7, image_size=(30, 40))
    ds = Dataset(
        [ImageInfo("a.jpg", (30, 40), image_id=12), ImageInfo("b.jpg", (10, 20))],
        [Label("a.jpg", "dog", box=box), Label("a.jpg", "cat", 0.4, Provenance(source="model"), box=box)],
        onto,
    )
    out = format_coco(ds)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in out["images"]] == [
        (12, "a.jpg", 40, 30), (13, "b.jpg", 20, 10)]
    assert out["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    human, model = out["annotations"]
    assert human["category_id"] == 2 and "score" not in human and human["iscrowd"] == 0
    assert model["score"] == 0.4 and model["area"] == 50.0 and model["bbox"] == [1.0, 2.0, 10.0, 5.0]


def test_format_refuses_class_only_labels_and_unknown_sizes():
    with pytest.raises(InputError, match="a.jpg: label 'cat' has no box or mask.*--to imagefolder"):
        format_coco(Dataset([ImageInfo("a.jpg", (3, 4))], [Label("a.jpg", "cat")], Ontology(("cat",))))
    with pytest.raises(InputError, match="b.jpg: image size unknown"):
        format_coco(Dataset([ImageInfo("b.jpg")], [], Ontology(("cat",))))


def test_file_round_trip(tmp_path):
    data = coco([
        {"id": 1, "image_id": 12, "category_id": 7, "bbox": [1.25, 2, 10, 5.5]},
        {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0, 0, 20, 10], "score": 0.5,
         "segmentation": [[0, 0, 20, 0, 20, 10]]},
    ])
    ds = parse_coco(data, origin="in.json")
    write_coco(ds, tmp_path / "out" / "instances.json")
    again = read_coco(tmp_path / "out" / "instances.json")
    assert again.images == ds.images and again.ontology == ds.ontology
    assert [(x.image, x.label, x.confidence, x.source, x.box, x.mask) for x in again.labels] == [
        (x.image, x.label, x.confidence, x.source, x.box, x.mask) for x in ds.labels]


def test_read_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text('{"images": [}')
    with pytest.raises(InputError, match="instances.json: not valid JSON"):
        read_coco(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="expected a JSON object"):
        read_coco(path)
