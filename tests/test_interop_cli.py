"""``pixlabel export WS --to TOOL`` and ``pixlabel import WS --from TOOL``: a review made in the tool comes back
as human labels through the store, with history, and a second import of the same file changes nothing."""

import json

import pytest
import yaml
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.records import Box, Label, Provenance
from pixlabel.store import open_store
from pixlabel.workspace import Workspace

SIZE = (60, 80)  # (h, w)
MODEL = Provenance(source="model", labeler="detector", model_version="fcos-r2")


@pytest.fixture
def workspace(tmp_path):
    """A workspace whose store has 3 images: a.png with two model boxes, b.png with a model class label, c.png
    with a human box."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (SIZE[1], SIZE[0]), (90, 90, 90)).save(images / name)
    ws = Workspace.create(tmp_path / "ws")
    ws.config_yaml.write_text(yaml.safe_dump({"images": str(images)}))
    with open_store(ws.db_path) as store:
        store.sync_images([(n, f"hash-{n}", SIZE) for n in ("a.png", "b.png", "c.png")])
        store.ensure_classes(["car", "sign"])
        store.put_labels([
            Label("a.png", "car", 0.8, MODEL, status="review", box=Box(10, 10, 30, 30, image_size=SIZE)),
            Label("a.png", "sign", 0.3, MODEL, status="review", box=Box(50, 5, 70, 15, image_size=SIZE)),
            Label("b.png", "car", 0.9, MODEL),
            Label("c.png", "sign", box=Box(1, 1, 9, 9, image_size=SIZE)),
        ])
    return ws


def reviewed(tasks, edits):
    """A Label Studio export where the tasks named in ``edits`` were submitted with the given result."""
    out = []
    for n, task in enumerate(tasks, start=1):
        item = {"id": n, "data": task["data"], "predictions": task.get("predictions", []), "annotations": []}
        path = task["data"]["pixlabel_path"]
        if path in edits:
            item["annotations"] = [{"id": n, "completed_by": {"email": "ana@example.org"}, "result": edits[path],
                                    "was_cancelled": False, "updated_at": "2026-12-05T10:00:00Z"}]
        out.append(item)
    return out


def test_label_studio_round_trip_keeps_history_and_is_idempotent(workspace, tmp_path, capsys):
    out = tmp_path / "ls" / "tasks.json"
    assert main(["export", str(workspace.root), "--to", "label-studio", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 4 labels on 3 images for label-studio" in printed
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={tmp_path / 'images'}" in printed
    assert (tmp_path / "ls" / "tasks.config.xml").is_file()
    tasks = json.loads(out.read_text())
    a_regions = tasks[0]["predictions"][0]["result"]
    # The reviewer keeps the car box as it is, deletes the sign, draws a new sign with a transcript.
    new_sign = {"id": "new", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                "original_width": 80, "original_height": 60,
                "value": {"x": 50, "y": 50, "width": 25, "height": 25, "rotation": 0, "rectanglelabels": ["sign"]}}
    text = {**new_sign, "from_name": "transcription", "type": "textarea",
            "value": {**new_sign["value"], "text": ["STOP"]}}
    export = tmp_path / "project-1.json"
    export.write_text(json.dumps(reviewed(tasks, {"a.png": [a_regions[0], new_sign, text]})))

    assert main(["import", str(workspace.root), "--from", "label-studio", str(export)]) == 0
    printed = capsys.readouterr().out
    assert "imported 2 human labels on 1 reviewed images" in printed
    assert "(1 added, 1 changed, 1 removed, 0 unchanged; 2 images without a review left alone)" in printed
    with open_store(workspace.db_path) as store:
        labels = {(x.image, x.label): x for x in store.labels()}
        history = store.history("a.png")
    car, sign = labels[("a.png", "car")], labels[("a.png", "sign")]
    assert (car.source, car.status, car.confidence, car.box.xywh) == ("human", "accepted", 1.0, (10, 10, 20, 20))
    assert car.provenance.labeler == "label-studio:ana@example.org"
    assert sign.box.xywh == (40, 30, 20, 15) and sign.attributes == {"text": "STOP"}
    assert labels[("b.png", "car")].source == "model"  # not reviewed: untouched
    assert labels[("c.png", "sign")].source == "human"
    reasons = [(h.reason, h.old is not None, h.new is not None) for h in history[-3:]]
    assert all(r[0] == "review imported from label-studio (project-1.json)" for r in reasons)
    assert sorted(r[1:] for r in reasons) == [(False, True), (True, False), (True, True)]
    rows = workspace.labels_csv.read_text().splitlines()  # written again after the import
    assert sum(r.startswith("a.png,") and ",human," in r for r in rows) == 2

    assert main(["import", str(workspace.root), "--from", "label-studio", str(export)]) == 0
    assert "(0 added, 0 changed, 0 removed, 2 unchanged;" in capsys.readouterr().out
    with open_store(workspace.db_path) as store:
        assert len(store.history("a.png")) == len(history)


def test_import_refuses_images_the_workspace_does_not_have(workspace, tmp_path, capsys):
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"id": 9, "data": {"image": "/data/upload/1/zebra.png"},
                                   "annotations": [{"result": []}]}]))
    assert main(["import", str(workspace.root), "--from", "label-studio", str(export)]) == 2
    assert "task 9: image '/data/upload/1/zebra.png' is not in the workspace" in capsys.readouterr().err


def test_import_adds_classes_the_reviewers_introduced(workspace, tmp_path, capsys):
    export = tmp_path / "e.json"
    choice = {"id": "c", "from_name": "choice", "to_name": "image", "type": "choices",
              "value": {"choices": ["truck"]}}
    export.write_text(json.dumps([{"id": 1, "data": {"image": "/data/local-files/?d=b.png"},
                                   "annotations": [{"completed_by": 4, "result": [choice]}]}]))
    assert main(["import", str(workspace.root), "--from", "label-studio", str(export)]) == 0
    assert "new classes: truck" in capsys.readouterr().out
    with open_store(workspace.db_path) as store:
        b = [x for x in store.labels() if x.image == "b.png"]
    assert [(x.label, x.source, x.provenance.labeler) for x in b] == [("truck", "human", "label-studio:4")]
