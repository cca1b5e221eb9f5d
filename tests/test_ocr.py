"""``pixlabel label --task ocr``: text-line boxes with their transcript as the ``text`` attribute, stored through
the store and exported to COCO (``attributes.text``) and Label Studio (a per-region TextArea)."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pixlabel.cli.main import main
from pixlabel.detect.ocr import TextBox, TextReader
from pixlabel.errors import InputError
from pixlabel.io.formats.coco import format_coco, parse_coco
from pixlabel.io.formats.csvfmt import format_labels_csv
from pixlabel.pipeline.ocr_label import text_labels
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance
from pixlabel.store import open_store

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian fonts-dejavu-core


def render(lines, size=(320, 130)):
    im = Image.new("RGB", size, (242, 240, 236))
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(FONT, 28)
    for n, text in enumerate(lines):
        draw.text((20, 15 + 55 * n), text, fill=(15, 15, 25), font=font)
    return im


def test_text_lines_become_clipped_boxes_with_transcripts_and_review_below_the_threshold():
    quad = np.array([[5, -3], [60, -2], [61, 20], [4, 19]], float)
    lines = [TextBox(quad, "EXIT", 0.99), TextBox(quad + 30, "Ausgang", 0.6),
             TextBox(np.array([[200, 5], [210, 5], [210, 9], [200, 9]], float), "off", 0.9)]
    labels = text_labels("a.png", lines, image_size=(40, 100), version="rapidocr x", accept_at=0.97)
    assert [(x.label, x.attributes["text"], x.status) for x in labels] == [("text", "EXIT", "accepted"),
                                                                          ("text", "Ausgang", "review")]
    assert labels[0].box == Box(4, 0, 61, 20, image_size=(40, 100))  # upright box around the quad, clipped
    assert labels[0].provenance.model_version == "rapidocr x" and labels[0].confidence == 0.99


def test_coco_carries_transcripts_as_annotation_attributes():
    box = Box(1, 2, 11, 7, image_size=(30, 40))
    ds = Dataset([ImageInfo("a.jpg", (30, 40))], [Label("a.jpg", "text", 0.9, Provenance(source="model"), box=box,
                                                        attributes={"text": "Ein & Aus", "lang": "de"})],
                 Ontology(("text",)))
    out = format_coco(ds)
    assert out["annotations"][0]["attributes"] == {"text": "Ein & Aus", "lang": "de"}
    back = parse_coco(json.loads(json.dumps(out)), origin="x.json")
    assert back.labels[0].attributes == {"text": "Ein & Aus", "lang": "de"}
    out["annotations"][0]["attributes"] = {"text": ["a", "b"]}
    with pytest.raises(InputError, match="x.json annotation id 1: attributes must be an object of strings"):
        parse_coco(out, origin="x.json")


def test_attributes_survive_the_store_and_compare_in_its_snapshots(tmp_path):
    with open_store(tmp_path / "s.db") as store:
        store.sync_images([("a.png", "h", (30, 40))])
        store.ensure_classes(["text"])
        lab = Label("a.png", "text", 0.8, Provenance(source="model"), box=Box(1, 1, 9, 9, image_size=(30, 40)),
                    attributes={"text": "STOP"})
        assert store.put_labels([lab]).inserted == 1
        assert store.put_labels([lab]).unchanged == 1  # same transcript: no churn
        changed = Label(lab.image, lab.label, lab.confidence, lab.provenance, box=lab.box, attributes={"text": "SHOP"})
        assert store.put_labels([changed]).inserted == 1
        assert [x.attributes for x in store.labels()] == [{"text": "SHOP"}]
        assert store.history("a.png")[-1].new["attributes"] == {"text": "SHOP"}


def test_labels_csv_gets_a_column_per_attribute_under_its_header():
    rows = list(csv.DictReader(io.StringIO(format_labels_csv([
        Label("a.png", "street"),
        Label("a.png", "text", 0.9, Provenance(source="model"), box=Box(1, 2, 3, 4, image_size=(10, 10)),
              attributes={"text": "EXIT, now", "label": "odd"}),
    ]))))
    assert rows[0]["text"] == "" and rows[0]["x1"] == ""
    assert (rows[1]["text"], rows[1]["attr_label"], rows[1]["label"], rows[1]["x2"]) == ("EXIT, now", "odd", "text",
                                                                                        "3")


def test_attribute_values_must_be_scalars():
    with pytest.raises(ValueError, match="a.png: attribute 'text' must be a non-empty name with a string"):
        Label("a.png", "text", attributes={"text": ["x"]})


@pytest.mark.slow
def test_rapidocr_reads_rendered_text():
    lines = TextReader().read(np.asarray(render(["EXIT 42", "Hello World"])))
    text = " ".join(t.text for t in lines)
    assert "EXIT" in text and "Hello World" in text
    assert all(0.5 <= t.score <= 1.0 for t in lines)
    ys = [t.xyxy[1] for t in lines if "Hello" in t.text]
    assert ys and ys[0] > 55  # the second line is found where it was drawn


@pytest.mark.slow
def test_label_task_ocr_end_to_end_to_coco_and_label_studio(tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    render(["PARKING"]).save(images / "a.png")
    Image.new("RGB", (64, 64), (255, 255, 255)).save(images / "blank.png")
    (images / "broken.png").write_bytes(b"not a png")
    ws = tmp_path / "ws"
    assert main(["label", str(images), "--task", "ocr", "--out", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "text lines on 1/2 images with rapidocr" in out and "1 unreadable file(s)" in out
    coco = json.loads((ws / "labels.coco.json").read_text())
    assert [a["attributes"]["text"] for a in coco["annotations"]] == ["PARKING"]
    assert coco["categories"] == [{"id": 1, "name": "text"}]
    assert "PARKING" in {row["text"] for row in csv.DictReader((ws / "labels.csv").open())}
    assert main(["export", str(ws), "--to", "label-studio", "--out", str(tmp_path / "tasks.json")]) == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    regions = next(t for t in tasks if t["data"]["pixlabel_path"] == "a.png")["predictions"][0]["result"]
    assert [r["type"] for r in regions] == ["rectanglelabels", "textarea"]
    assert regions[1]["value"]["text"] == ["PARKING"] and regions[0]["id"] == regions[1]["id"]
    assert "<TextArea name=\"transcription\"" in (tmp_path / "tasks.config.xml").read_text()
