"""FiftyOne export: the serialized dataset directory (metadata.json + samples.json) that
``fo.Dataset.from_dir(DIR, dataset_type=fo.types.FiftyOneDataset)`` loads. FiftyOne itself needs a MongoDB that
cannot be installed here, so its importer was run without one (scripts/interop/check_fiftyone.py ->
bench/out/interop_fiftyone.json) and these tests pin the files it read."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as cocomask

from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.io.formats.fiftyone import format_fiftyone, write_fiftyone
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance
from pixlabel.store import open_store
from pixlabel.workspace import Workspace
from test_formats_labelstudio import sample

INTEROP = Path(__file__).parent / "data" / "interop"


def test_samples_carry_labels_confidences_and_provenance_as_fields(tmp_path):
    files = format_fiftyone(sample(), tmp_path)
    assert "version" not in files["metadata.json"]  # FiftyOne then reads it with its JSON-only importer
    assert files["metadata.json"]["default_classes"] == ["car", "sign", "street"]
    a, b = files["samples.json"]["samples"]
    assert a["filepath"] == str(tmp_path / "street" / "a.png") and a["pixlabel_path"] == "street/a.png"
    assert a["tags"] == ["review"] and b["tags"] == []  # the car box awaits review
    assert a["metadata"] == {"_cls": "ImageMetadata", "width": 80, "height": 60}
    assert a["classification"] == {"_cls": "Classification", "label": "street", "confidence": 1.0, "tags": [],
                                   "source": "human", "labeler": "human", "model_version": "", "round": 0,
                                   "status": "accepted"}
    sign, car = a["detections"]["detections"]
    assert sign["bounding_box"] == pytest.approx([0.125, 0.2, 0.25, 1 / 6])
    assert (sign["confidence"], sign["source"], sign["model_version"], sign["text"]) == (0.91, "model", "fcos-r2",
                                                                                         "EXIT")
    assert car["status"] == "review" and "text" not in car
    polyline = b["segmentations"]["polylines"][0]
    assert polyline["points"] == [[[0.1, 0.125], [0.6, 0.125], [0.6, 0.5], [0.1, 0.5]]]
    assert polyline["closed"] and polyline["filled"]


def test_the_written_files_are_the_ones_fiftyone_read():
    files = format_fiftyone(sample(), INTEROP / "pixlabel" / "images", name="fiftyone")
    pinned = json.loads((INTEROP / "pixlabel" / "fiftyone" / "samples.json").read_text())
    for ours, theirs in zip(files["samples.json"]["samples"], pinned["samples"], strict=True):
        assert {k: v for k, v in ours.items() if k != "filepath"} == {k: v for k, v in theirs.items()
                                                                     if k != "filepath"}
    assert files["metadata.json"] == json.loads((INTEROP / "pixlabel" / "fiftyone" / "metadata.json").read_text())
    checked = json.loads((Path(__file__).parents[1] / "bench" / "out" / "interop_fiftyone.json").read_text())
    read = {s["pixlabel_path"]: s for s in checked["pixlabel_fiftyone_dir"]}
    assert {s["importer"] for s in read.values()} == {"LegacyFiftyOneDatasetImporter"}
    assert all(s["filepath_exists"] for s in read.values())
    assert read["street/a.png"]["classification"] == ["street", 1.0, "human"]
    assert read["street/a.png"]["detections"][0] == ["sign", [0.125, 0.2, 0.25, 0.1667], 0.91, "model", "fcos-r2",
                                                     "EXIT"]
    # the polygon, and the bitmap mask as its outside ring plus its hole's
    assert read["b.png"]["segmentations"] == [["car", 4, "human"], ["car", 8, "model"]]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools under numpy 2
def test_rle_masks_become_outlines_with_their_holes():
    pixels = np.zeros((20, 20), np.uint8, order="F")
    pixels[2:18, 2:18] = 1
    pixels[8:12, 8:12] = 0  # a hole
    rle = cocomask.encode(pixels)
    ds = Dataset([ImageInfo("a.png", (20, 20))], [Label("a.png", "ring", mask=Mask((20, 20), rle=rle))],
                 Ontology(("ring",)))
    polyline = format_fiftyone(ds, "/imgs")["samples.json"]["samples"][0]["segmentations"]["polylines"][0]
    assert len(polyline["points"]) == 2  # the outside and the hole
    outer = np.array(polyline["points"][0])
    assert outer.min() == pytest.approx(0.1) and outer.max() == pytest.approx(0.9)


def test_two_class_labels_on_one_image_are_refused():
    ds = Dataset([ImageInfo("a.png", (4, 4))], [Label("a.png", "x"), Label("a.png", "y")], Ontology(("x", "y")))
    with pytest.raises(InputError, match="a.png: two class labels"):
        format_fiftyone(ds, "/imgs")


def test_write_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(InputError, match="must be new or empty"):
        write_fiftyone(sample(), tmp_path, tmp_path / "out")


def test_cli_export_to_fiftyone_uses_the_recorded_image_folder(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 6)).save(images / "a.png")
    ws = Workspace.create(tmp_path / "ws")
    with open_store(ws.db_path) as store:
        store.sync_images([("a.png", "h", (6, 8))])
        store.ensure_classes(["car"])
        store.put_labels([Label("a.png", "car", 0.7, Provenance(source="model", model_version="m1"),
                                box=Box(1, 1, 5, 5, image_size=(6, 8)))])
    assert main(["export", str(ws.root), "--to", "fiftyone", "--out", str(tmp_path / "fo")]) == 2
    assert "config.yaml: cannot read the image folder from it" in capsys.readouterr().err
    ws.config_yaml.write_text(yaml.safe_dump({"images": str(images)}))
    assert main(["export", str(ws.root), "--to", "fiftyone", "--out", str(tmp_path / "fo")]) == 0
    assert "fo.Dataset.from_dir(" in capsys.readouterr().out
    sample_ = json.loads((tmp_path / "fo" / "samples.json").read_text())["samples"][0]
    assert Path(sample_["filepath"]).is_file()
    assert sample_["detections"]["detections"][0]["model_version"] == "m1"
