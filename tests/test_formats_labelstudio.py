import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pixlabel.errors import InputError
from pixlabel.io.formats._common import FormatWarning, PathResolver
from pixlabel.io.formats._masks import mask_bitmap
from pixlabel.io.formats.coco import read_coco
from pixlabel.io.formats.labelstudio import (
    format_labelstudio,
    format_labelstudio_config,
    image_reference,
    parse_labelstudio,
)
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance

INTEROP = Path(__file__).parent / "data" / "interop"
MODEL = Provenance(source="model", labeler="detector", model_version="fcos-r2")


def load_script(name):
    path = Path(__file__).parents[1] / "scripts" / "interop" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample():
    return load_script("make_pixlabel_outputs").sample_dataset()


def rect(region_id, label, x, y, w, h, *, size=(80, 60), score=None, rotation=0):
    r = {"id": region_id, "from_name": "label", "to_name": "image", "type": "rectanglelabels",
         "original_width": size[0], "original_height": size[1],
         "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}}
    if score is not None:
        r["score"] = score
    return r


def test_tasks_hold_predictions_in_percent_with_scores_text_and_own_path():
    tasks = format_labelstudio(sample())
    first = tasks[0]
    assert first["data"] == {"image": "/data/local-files/?d=street/a.png", "pixlabel_path": "street/a.png"}
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "fcos-r2" and prediction["score"] == 0.64  # the weakest label
    by_type = [(r["type"], r["id"]) for r in prediction["result"]]
    assert by_type == [("rectanglelabels", "a-0"), ("textarea", "a-0"), ("rectanglelabels", "a-1"),
                       ("choices", "a-2")]
    sign, text, car, street = prediction["result"]
    assert sign["value"] == {"x": 12.5, "y": 20.0, "width": 25.0, "height": pytest.approx(100 / 6),
                             "rotation": 0, "rectanglelabels": ["sign"]}
    assert (sign["original_width"], sign["original_height"], sign["score"]) == (80, 60, 0.91)
    assert text["from_name"] == "transcription" and text["value"]["text"] == ["EXIT"]
    assert street["value"] == {"choices": ["street"]} and street["score"] == 1.0
    polygon = tasks[1]["predictions"][0]["result"][0]
    assert polygon["type"] == "polygonlabels"
    assert polygon["value"]["points"] == [[10.0, 12.5], [60.0, 12.5], [60.0, 50.0], [10.0, 50.0]]
    assert tasks[1]["predictions"][0]["model_version"] == "fcos-r2"  # the model's bitmap mask there
    human_only = format_labelstudio(Dataset([ImageInfo("a.png", (4, 4))], [Label("a.png", "car")], Ontology(("car",))))
    assert human_only[0]["predictions"][0]["model_version"] == "human"


def test_image_url_prefix_and_unlabelled_images_get_tasks_without_predictions():
    ds = Dataset([ImageInfo("x y.jpg", (10, 10))], [], Ontology(("cat",)))
    tasks = format_labelstudio(ds, url_prefix="https://cdn.example/img/")
    assert tasks == [{"data": {"image": "https://cdn.example/img/x%20y.jpg", "pixlabel_path": "x y.jpg"}}]


def test_config_has_the_controls_the_regions_name_and_escapes_class_names():
    xml = format_labelstudio_config(sample())
    root = ET.fromstring(xml)
    assert [(el.tag, el.get("name")) for el in root] == [
        ("Image", "image"), ("Choices", "choice"), ("RectangleLabels", "label"), ("PolygonLabels", "polygon"),
        ("BrushLabels", "brush"), ("TextArea", "transcription")]
    assert [c.get("value") for c in root.find("RectangleLabels")] == ["car", "sign", "street"]
    assert root.find("TextArea").get("perRegion") == "true"
    odd = format_labelstudio_config(Dataset([], [Label("a", 'R&D "lab"')], Ontology(('R&D "lab"',))))
    assert ET.fromstring(odd).find("Choices/Choice").get("value") == 'R&D "lab"'


def test_our_outputs_are_the_files_the_sdk_validated():
    """tests/data/interop/pixlabel was checked with label-studio-sdk (scripts/interop/check_labelstudio.py,
    bench/out/interop_labelstudio.json); writing the same dataset today must give the same files."""
    ds = sample()
    assert format_labelstudio(ds) == json.loads((INTEROP / "pixlabel" / "tasks.json").read_text())
    assert format_labelstudio_config(ds) + "\n" == (INTEROP / "pixlabel" / "tasks.config.xml").read_text()
    checked = json.loads((Path(__file__).parents[1] / "bench" / "out" / "interop_labelstudio.json").read_text())
    assert checked["predictions_valid"] and checked["sdk_coco_matches_pixlabel_coco"]


def test_export_reads_back_the_same_labels():
    ds = sample()
    parsed = parse_labelstudio(format_labelstudio(ds), origin="tasks.json")
    assert parsed.reviewed == []  # predictions are not a review
    assert len(parsed.dataset.labels) == len(ds.labels)
    for lab, back in zip(ds.labels, parsed.dataset.labels, strict=True):  # same order: task by task
        assert (back.image, back.label, back.attributes) == (lab.image, lab.label, lab.attributes)
        if lab.box is not None:
            assert back.box.xywh == pytest.approx(lab.box.xywh) and back.box.image_size == lab.box.image_size
        if lab.mask is not None and lab.mask.polygons:
            assert back.mask.polygons[0] == pytest.approx(lab.mask.polygons[0])
        expected = (lab.confidence, "model") if lab.source == "model" else (1.0, "model")
        assert (back.confidence, back.source) == expected
    assert parsed.dataset.labels[0].provenance.model_version == "fcos-r2"


def export_task(task_id, image, annotations, predictions=()):
    return {"id": task_id, "data": {"image": image}, "annotations": list(annotations),
            "predictions": list(predictions)}


def annotation(result, *, who="ana@example.org", updated="2026-12-01T10:00:00Z", cancelled=False):
    return {"id": 1, "completed_by": {"id": 3, "email": who}, "result": result, "was_cancelled": cancelled,
            "updated_at": updated}


def test_parse_export_takes_the_latest_annotation_and_names_the_annotator():
    data = [
        export_task(1, "/data/upload/2/1a2b3c4d-a.png", [
            annotation([rect("r1", "car", 10, 10, 20, 20)], updated="2026-12-01T10:00:00Z"),
            annotation([rect("r2", "car", 50, 50, 25, 25),
                        {"id": "r2", "from_name": "transcription", "to_name": "image", "type": "textarea",
                         "original_width": 80, "original_height": 60,
                         "value": {"x": 50, "y": 50, "width": 25, "height": 25, "text": ["STOP"]}},
                        {"id": "c", "from_name": "choice", "to_name": "image", "type": "choices",
                         "value": {"choices": ["street"]}}], who="bo@example.org", updated="2026-12-02T09:00:00Z"),
            annotation([], cancelled=True, updated="2026-12-03T00:00:00Z"),
        ]),
        export_task(2, "/data/local-files/?d=b.png", [], [{"model_version": "v9", "score": 0.5,
                                                          "result": [rect("p", "car", 0, 0, 10, 10, score=0.4)]}]),
    ]
    parsed = parse_labelstudio(data, origin="export.json", known={"street/a.png": (60, 80), "b.png": (40, 50)})
    assert parsed.reviewed == ["street/a.png"]
    box, street, predicted = parsed.dataset.labels
    assert (box.image, box.label, box.source, box.provenance.labeler) == ("street/a.png", "car", "human",
                                                                          "label-studio:bo@example.org")
    assert box.box.xywh == (40.0, 30.0, 20.0, 15.0) and box.attributes == {"text": "STOP"}
    assert (street.label, street.box) == ("street", None)
    assert (predicted.image, predicted.source, predicted.confidence) == ("b.png", "model", 0.4)
    assert predicted.provenance.model_version == "v9"


def test_rotated_rectangle_becomes_the_box_around_it():
    data = [export_task(1, "a.png", [annotation([rect("r", "car", 50, 10, 20, 10, size=(100, 100), rotation=90)])])]
    with pytest.warns(FormatWarning, match="task 1 region r: rectangle rotated 90 degrees"):
        parsed = parse_labelstudio(data, origin="export.json")
    # turned clockwise about its top-left corner (50, 10): 20 wide, 10 high becomes 10 wide, 20 high, leftwards
    assert parsed.dataset.labels[0].box.xywh == pytest.approx((40.0, 10.0, 10.0, 20.0))


def test_keypoints_are_skipped_with_a_warning():
    point = {"id": "k", "from_name": "kp", "to_name": "image", "type": "keypointlabels",
             "original_width": 10, "original_height": 10, "value": {"x": 5, "y": 5, "keypointlabels": ["eye"]}}
    with pytest.warns(FormatWarning, match="region k: keypointlabels regions are not supported"):
        parsed = parse_labelstudio([export_task(4, "a.png", [annotation([point])])], origin="e.json")
    assert parsed.dataset.labels == [] and parsed.reviewed == ["a.png"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2, not our code
def test_reads_a_brush_mask_the_sdk_encoded():
    """brush_sdk.json holds a brushlabels region encoded by label-studio-sdk's mask2rle
    (scripts/interop/check_labelstudio.py) and brush_sdk_mask.json the mask it encodes."""
    tasks = json.loads((INTEROP / "labelstudio" / "brush_sdk.json").read_text())
    expected = np.array(json.loads((INTEROP / "labelstudio" / "brush_sdk_mask.json").read_text()), np.uint8)
    parsed = parse_labelstudio(tasks, origin="brush_sdk.json", known={"b.png": (40, 50)})
    (label,) = parsed.dataset.labels
    assert (label.image, label.label, label.source) == ("b.png", "car", "human")
    assert label.mask.rle is not None and np.array_equal(mask_bitmap(label.mask), expected)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bitmap_masks_are_written_as_brush_regions_the_sdk_decodes():
    ds = sample()
    tasks = format_labelstudio(ds)
    brush = [r for r in tasks[1]["predictions"][0]["result"] if r["type"] == "brushlabels"]
    assert len(brush) == 1 and brush[0]["from_name"] == "brush" and brush[0]["value"]["format"] == "rle"
    assert [c.tag for c in ET.fromstring(format_labelstudio_config(ds))].count("BrushLabels") == 1
    back = parse_labelstudio(tasks, origin="tasks.json")
    rle_label = next(x for x in ds.labels if x.mask is not None and x.mask.rle is not None)
    got = next(x for x in back.dataset.labels if x.mask is not None and x.mask.rle is not None)
    assert np.array_equal(mask_bitmap(got.mask), mask_bitmap(rle_label.mask))  # the hole too
    checked = json.loads((Path(__file__).parents[1] / "bench" / "out" / "interop_labelstudio.json").read_text())
    assert checked["sdk_decodes_pixlabel_brush_as_coco_mask"] and checked["pixlabel_brush_regions"] == 1


def test_malformed_brush_is_an_error_naming_the_region():
    brush = {"id": "b", "from_name": "brush", "to_name": "image", "type": "brushlabels", "original_width": 10,
             "original_height": 10, "value": {"format": "rle", "rle": [0, 0, 1], "brushlabels": ["car"]}}
    with pytest.raises(InputError, match="e.json task 4 region b: cannot decode the brush mask"):
        parse_labelstudio([export_task(4, "a.png", [annotation([brush])])], origin="e.json")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"image": "a.png", "id": 1, "annotator": 2, "label": []}], " task 1: this is Label Studio's JSON-MIN"),
        ({"tasks": []}, " task 0: expected a task object with a 'data' object"),
        ("nope", ": expected a JSON list of Label Studio tasks, got str"),
        ([export_task(7, "a.png", [annotation([{"id": "c", "type": "choices", "from_name": "choice",
                                                "to_name": "image", "value": {"choices": ["a", "b"]}}])])],
         " task 7 region c: 2 choices \\(a, b\\); pixlabel keeps one class label per image"),
        ([export_task(7, "a.png", [annotation([{**rect("r", "car", 1, 1, 1, 1), "original_width": None}])])],
         " task 7 region r: needs original_width and original_height"),
        ([export_task(7, "a.png", [annotation([rect("r", "car", "x", 1, 1, 1)])])],
         " task 7 region r: value.x must be a number"),
        ([export_task(7, "a.png", [], [{"result": [rect("r", "car", 1, 1, 1, 1, score=3)]}])],
         " task 7 region r: score must be a number from 0 to 1, got 3"),
        ([export_task(7, "../../etc/passwd", [])], " task 7: image path '../../etc/passwd' must be relative"),
    ],
)
def test_malformed_exports_name_the_task_and_region(data, message):
    with pytest.raises(InputError, match="export.json" + message):
        parse_labelstudio(data, origin="export.json")


def test_unknown_image_is_an_error_naming_the_task():
    with pytest.raises(InputError, match="task 5: image 'http://x/zebra.png' is not in the workspace"):
        parse_labelstudio([export_task(5, "http://x/zebra.png", [])], origin="e.json", known={"a.png": None})


def test_image_references_resolve_to_workspace_paths():
    resolve_path = PathResolver(["pets/cat.jpg", "pets/dog.jpg", "other/dog.jpg", "x y.png"]).resolve
    assert image_reference("/data/local-files/?d=pets%2Fcat.jpg") == "pets/cat.jpg"
    assert image_reference("http://host:8080/static/x%20y.png") == "static/x y.png"
    assert resolve_path("pets/cat.jpg") == "pets/cat.jpg"
    assert resolve_path("home/ana/data/pets/cat.jpg") == "pets/cat.jpg"  # document root above WS root
    assert resolve_path("data/upload/1/0f3e9a1b-cat.jpg") == "pets/cat.jpg"  # an upload, renamed
    assert resolve_path("static/x y.png") == "x y.png"
    assert resolve_path("upload/dog.jpg") is None  # two dogs: ambiguous, never a guess
    assert resolve_path("zebra.jpg") is None


def test_sdk_coco_import_reads_back_as_the_coco_it_came_from():
    """from_coco.json is what label-studio-sdk's convert_coco_to_ls made of pixlabel's coco.json."""
    tasks = json.loads((INTEROP / "labelstudio" / "from_coco.json").read_text())
    coco = read_coco(INTEROP / "pixlabel" / "coco.json")
    parsed = parse_labelstudio(tasks, origin="from_coco.json", known={i.path: i.image_size for i in coco.images})
    assert sorted(parsed.reviewed) == ["b.png", "street/a.png"]  # the SDK writes them as annotations
    boxes = sorted((x.image, x.label, tuple(round(v, 6) for v in x.box.xywh))
                   for x in parsed.dataset.labels if x.box is not None)
    with_polygons = [x for x in coco.labels if x.mask is None or x.mask.polygons]  # the SDK skips RLE masks
    assert boxes == sorted((x.image, x.label, tuple(round(v, 6) for v in x.box.xywh)) for x in with_polygons)
    polygons = [x for x in parsed.dataset.labels if x.mask is not None]  # the SDK adds the polygon beside its box
    assert len(polygons) == 1
    assert polygons[0].mask.polygons[0] == pytest.approx(with_polygons[-1].mask.polygons[0])


def test_box_only_dataset_still_gets_a_rectangle_control():
    ds = Dataset([ImageInfo("a.png", (10, 10))], [Label("a.png", "car", 0.5, MODEL,
                                                         box=Box(1, 1, 5, 5, image_size=(10, 10)))],
                 Ontology(("car",)))
    root = ET.fromstring(format_labelstudio_config(ds))
    assert [el.tag for el in root] == ["Image", "RectangleLabels"]
