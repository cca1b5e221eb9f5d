import datetime as dt

import pytest

from pixlabel.errors import InputError
from pixlabel.io.formats.csvfmt import format_labels_csv, parse_labels_csv, read_labels_csv, write_labels_csv
from pixlabel.records import LABELS_CSV_COLUMNS, Box, ImageInfo, Label, Ontology, Provenance


def test_parse_minimal_csv_with_unlabeled_row_and_extra_column():
    text = "path,label,notes\ncat/1.jpg,cat,fluffy\n2.jpg,,\ndog/3.jpg,dog,\n"
    ds = parse_labels_csv(text, origin="labels.csv")
    assert [i.path for i in ds.images] == ["cat/1.jpg", "2.jpg", "dog/3.jpg"]
    assert [(lab.image, lab.label) for lab in ds.labels] == [("cat/1.jpg", "cat"), ("dog/3.jpg", "dog")]
    assert all(lab.confidence == 1.0 and lab.source == "human" for lab in ds.labels)
    assert ds.ontology.classes == ("cat", "dog")


def test_parse_full_columns_and_excel_bom():
    text = ("\ufeffpath,label,confidence,source,status,labeler,model_version,round,created_at\n"
            "a.jpg,cat,0.25,model,review,spread,v2,3,2024-05-01T12:00:00\n")
    lab = parse_labels_csv(text, origin="labels.csv").labels[0]
    assert (lab.confidence, lab.source, lab.status) == (0.25, "model", "review")
    assert (lab.provenance.labeler, lab.provenance.model_version, lab.provenance.round) == ("spread", "v2", 3)
    assert lab.provenance.created_at == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_ontology_resolves_aliases_and_rejects_unknown_class_with_spreadsheet_row():
    onto = Ontology(("cat", "dog"), aliases={"kitty": "cat"})
    ds = parse_labels_csv("path,label\na.jpg,kitty\n", origin="labels.csv", ontology=onto)
    assert ds.labels[0].label == "cat" and ds.ontology is onto
    # blank line 3 still counts as a spreadsheet row, so the bad row is row 4
    with pytest.raises(InputError, match=r"labels\.csv row 4: unknown class 'cta'; known: cat, dog"):
        parse_labels_csv("path,label\na.jpg,cat\n\nb.jpg,cta\n", origin="labels.csv", ontology=onto)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("a.jpg,cat,1.5", r"row 3: confidence must be a number from 0 to 1, got '1.5'"),
        ("a.jpg,cat,high", r"row 3: confidence must be a number, got 'high'"),
        ("a.jpg,cat,,robot", r"row 3: source must be one of human, model, synthetic, got 'robot'"),
        ("a.jpg,cat,,,done", r"row 3: status must be one of accepted, review, got 'done'"),
        (",cat", r"row 3: the image path is empty"),
        ("../secret.jpg,cat", r"row 3: image path '../secret.jpg' must be relative"),
        ("a.jpg,cat,1,human,accepted,x", r"row 3: 6 cells but the header names 5"),
    ],
)
def test_bad_rows_name_the_row(cells, message):
    text = "path,label,confidence,source,status\nok.jpg,cat\n" + cells + "\n"
    with pytest.raises(InputError, match=message):
        parse_labels_csv(text, origin="labels.csv")


def test_header_must_name_path_and_label():
    with pytest.raises(InputError, match=r"labels\.csv row 1: .*missing path, label\); got file, class"):
        parse_labels_csv("file,class\na.jpg,cat\n", origin="labels.csv")
    with pytest.raises(InputError, match="empty file"):
        parse_labels_csv("", origin="labels.csv")


def test_format_follows_export_contract_with_six_decimal_confidence():
    lab = Label("a.jpg", "cat", 1 / 3, Provenance(source="model", labeler="knn", round=2))
    header, row = format_labels_csv([lab]).splitlines()
    assert tuple(header.split(",")[:5]) == LABELS_CSV_COLUMNS
    assert header.split(",")[5:] == ["labeler", "model_version", "round", "created_at"]
    assert row.split(",")[:5] == ["a.jpg", "cat", "0.333333", "model", "accepted"]


def test_round_trip_keeps_labels_boxes_provenance_and_unlabeled_images(tmp_path):
    stamp = dt.datetime(2023, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    box = Box(1.5, 2, 30.25, 40, image_size=(50, 60))
    labels = [
        Label("x/a.jpg", "cat", 0.5, Provenance(source="model", labeler="spread", model_version="m1", round=4,
                                                 created_at=stamp), "review", box=box),
        Label("b, with comma.jpg", "dog", 1.0, Provenance(source="human", created_at=stamp)),
    ]
    images = [ImageInfo("x/a.jpg"), ImageInfo("b, with comma.jpg"), ImageInfo("empty.jpg")]
    path = tmp_path / "out" / "labels.csv"
    write_labels_csv(labels, path, images=images)
    ds = read_labels_csv(path)
    assert ds.labels == labels
    assert [i.path for i in ds.images] == ["x/a.jpg", "b, with comma.jpg", "empty.jpg"]
    assert ds.images[0].image_size == (50, 60)


def test_box_columns_need_numbers_and_image_size():
    header = "path,label,x1,y1,x2,y2,image_width,image_height\n"
    with pytest.raises(InputError, match=r"row 2: a box needs numbers .*image_width=''"):
        parse_labels_csv(header + "a.jpg,cat,1,2,3,4,,10\n", origin="labels.csv")
    with pytest.raises(InputError, match=r"row 2: box corners out of order"):
        parse_labels_csv(header + "a.jpg,cat,5,2,3,4,10,10\n", origin="labels.csv")


def test_read_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="nope.csv: cannot read"):
        read_labels_csv(tmp_path / "nope.csv")
