"""Per-image properties (size, aspect, grey, sharpness, dominant colours): computed from pixels, stored on the
image by ``pixlabel ingest --properties``, exported to Label Studio, FiftyOne and COCO."""

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFilter

from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.io.properties import dominant_colors, image_properties, sharpness
from pixlabel.store import open_store


def checkerboard(size=128, cell=8):
    y, x = np.mgrid[:size, :size]
    board = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
    return np.stack([board] * 3, -1)


def test_size_aspect_and_grey():
    props = image_properties(np.full((30, 90, 3), (10, 120, 40), np.uint8))
    assert (props["width"], props["height"], props["aspect"], props["grey"]) == (90, 30, 3.0, False)
    assert props["colors"] == "green"
    assert image_properties(checkerboard())["grey"] is True


def test_sharpness_separates_a_blurred_copy():
    sharp = checkerboard()
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(4)))
    assert sharpness(sharp) > 20 * sharpness(blurred)
    assert image_properties(sharp)["blurry"] is False and image_properties(blurred)["blurry"] is True


def test_dominant_colors_of_real_photos_and_shares():
    assert dominant_colors(skimage.data.coffee())[0] == "brown"  # a cup of coffee on a brown table
    assert image_properties(np.stack([skimage.data.camera()] * 3, -1))["grey"] is True
    half = np.zeros((40, 40, 3), np.uint8)
    half[:, :30] = (40, 80, 205)
    half[:, 30:] = (240, 220, 45)
    assert dominant_colors(half) == ["blue", "yellow"]  # 75% and 25%, most first
    half[:, 38:] = (200, 30, 35)
    assert "red" not in dominant_colors(half)  # 5% is below MIN_SHARE


def test_ingest_properties_are_stored_and_exported(tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(skimage.data.coffee()).save(images / "coffee.png")
    Image.fromarray(skimage.data.camera()).save(images / "camera.png")
    (images / "bad.png").write_bytes(b"nope")
    ws = tmp_path / "ws"
    assert main(["ingest", str(images), "--out", str(ws), "--properties"]) == 0
    assert "stored properties of 2 images" in capsys.readouterr().out
    with open_store(ws / "pixlabel.db") as store:
        infos = {i.path: i for i in store.images()}
        assert infos["coffee.png"].image_size == (400, 600)
        assert infos["coffee.png"].attributes["colors"].startswith("brown")
        assert infos["camera.png"].attributes["grey"] is True
        with pytest.raises(InputError, match="unknown image"):
            store.set_image_attributes({"nope.png": {"x": 1}})
        with pytest.raises(InputError, match="must map names to strings, numbers or booleans"):
            store.set_image_attributes({"coffee.png": {"x": [1]}})
    (ws / "config.yaml").write_text(f"images: {images}\n")
    assert main(["export", str(ws), "--to", "label-studio", "--out", str(tmp_path / "t.json")]) == 0
    data = {t["data"]["pixlabel_path"]: t["data"] for t in json.loads((tmp_path / "t.json").read_text())}
    assert data["camera.png"]["grey"] is True and "sharpness" in data["coffee.png"]
    assert main(["export", str(ws), "--to", "fiftyone", "--out", str(tmp_path / "fo")]) == 0
    samples = json.loads((tmp_path / "fo" / "samples.json").read_text())["samples"]
    assert {s["pixlabel_path"]: s["colors"] for s in samples}["coffee.png"].startswith("brown")
    assert main(["export", str(ws), "--to", "coco", "--out", str(tmp_path / "c.json")]) == 0
    coco = json.loads((tmp_path / "c.json").read_text())
    assert {i["file_name"]: i["attributes"]["aspect"] for i in coco["images"]} == {"camera.png": 1.0,
                                                                                 "coffee.png": 1.5}
