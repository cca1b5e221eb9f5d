"""Box review through the HTTP API (FastAPI TestClient) and the store, on a tiny real detection workspace.

``make_box_workspace`` (PNG files, config.yaml, a store full of model boxes in review) is shared with
test_review_boxes_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.records import Box, Label, Provenance
from pixlabel.review import ReviewSettings, create_app
from pixlabel.review.files import image_root
from pixlabel.store import LabelStore, open_store
from pixlabel.workspace import Workspace

CLASSES = ["cat", "dog", "bird"]
W, H = 64, 48
N_IMAGES = 6
ANA, BOB = "ana-secret-1", "bob-secret-2"
AUTH = {"Authorization": f"Bearer {ANA}"}


def model_boxes(path: str, i: int) -> list[Label]:
    """Two answers per image (confidence rising with the image index) and one second-choice alternative
    (another class at the place of the first box, ranked 1)."""
    prov = Provenance(source="model", labeler="teacher-student-fcos")

    def box(x: float, y: float, w: float, h: float) -> Box:
        return Box.from_xywh(x, y, w, h, image_size=(H, W))

    return [Label(path, CLASSES[i % 3], round(0.20 + 0.1 * i, 3), prov, status="review", box=box(4, 4, 20, 16)),
            Label(path, CLASSES[(i + 1) % 3], round(0.25 + 0.1 * i, 3), prov, status="review",
                  box=box(30, 20, 24, 20)),
            Label(path, CLASSES[(i + 2) % 3], 0.05, prov, status="review", box=box(5, 4, 19, 16), rank=1)]


def make_box_workspace(root: Path, n: int = N_IMAGES) -> Path:
    """A workspace as ``pixlabel label --task detect`` leaves it: images, config.yaml, model boxes in review."""
    images, ws = root / "images", root / "ws"
    images.mkdir(parents=True)
    ws.mkdir()
    rng = np.random.default_rng(0)
    paths = [f"im{i:02d}.png" for i in range(n)]
    for p in paths:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / p)
    (ws / "config.yaml").write_text(yaml.safe_dump({"images": str(images), "out": str(ws), "task": "detect"}))
    with open_store(ws / "pixlabel.db") as store:
        store.sync_images([(p, f"hash-{p}", (H, W)) for p in paths])
        store.ensure_classes(CLASSES)
        store.put_labels([lab for i, p in enumerate(paths) for lab in model_boxes(p, i)])
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_box_workspace(tmp_path)


@pytest.fixture
def store(ws: Path) -> LabelStore:
    with open_store(ws / "pixlabel.db") as s:
        yield s


@pytest.fixture
def client(ws: Path, store: LabelStore) -> TestClient:
    # reads open, as on loopback with --open-reads; writes still need a token
    settings = ReviewSettings(image_root(Workspace(ws)), {ANA: "ana", BOB: "bob"}, open_reads=True)
    return TestClient(create_app(store, settings))


def test_queue_of_a_box_workspace_lists_boxes_least_confident_first(client: TestClient) -> None:
    """The bug of issue 19: a workspace full of model boxes in review gave an empty queue."""
    body = client.get("/api/queue", params={"limit": 5}).json()
    items = body["items"]
    assert len(items) == 5 and body["next_cursor"]
    assert [(x["path"], x["label"], x["confidence"]) for x in items[:3]] == [
        ("im00.png", "cat", 0.2), ("im00.png", "dog", 0.25), ("im01.png", "dog", 0.3)]
    assert items[0]["box"] == [4.0, 4.0, 20.0, 16.0] and isinstance(items[0]["label_id"], int)
    rest = client.get("/api/queue", params={"limit": 100, "after": body["next_cursor"]}).json()["items"]
    every = items + rest
    assert len(every) == 2 * N_IMAGES  # the ranked alternatives (0.05) do not flood the queue
    assert all(x["confidence"] > 0.1 for x in every)
    assert [x["confidence"] for x in every] == sorted(x["confidence"] for x in every)
    dogs = client.get("/api/queue", params={"label": "dog", "status": "review"}).json()["items"]
    assert {x["label"] for x in dogs} == {"dog"} and len(dogs) == 4


def test_add_replace_delete_a_box_with_history(client: TestClient, store: LabelStore) -> None:
    r = client.post("/api/labels", json={"path": "im02.png", "label": "bird", "box": [40, 2, 10, 12]}, headers=AUTH)
    assert r.status_code == 200, r.text
    added = r.json()
    assert {k: added[k] for k in ("path", "label", "box", "source", "status", "confidence", "labeler")} == {
        "path": "im02.png", "label": "bird", "box": [40.0, 2.0, 10.0, 12.0], "source": "human",
        "status": "accepted", "confidence": 1.0, "labeler": "ana"}
    # relabel + redraw a model box: same id, now human; its alternative underneath goes
    first = next(x for x in client.get("/api/queue", params={"limit": 100}).json()["items"]
                 if x["path"] == "im02.png" and x["box"][0] == 4.0)
    r = client.post("/api/labels", json={"path": "im02.png", "label_id": first["label_id"], "label": "dog",
                                         "box": [3, 3, 22, 18], "version": first["updated_at"]}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["label_id"], r.json()["label"], r.json()["box"]) == (first["label_id"], "dog",
                                                                          [3.0, 3.0, 22.0, 18.0])
    labels = [lab for lab in store.labels() if lab.image == "im02.png"]
    assert sorted((lab.label, lab.source, lab.rank) for lab in labels) == [
        ("bird", "human", 0), ("cat", "model", 0), ("dog", "human", 0)]  # the rank-1 alternative (dog) is gone
    # delete the other model box
    [other] = [x["label_id"] for x in client.get("/api/boxes", params={"path": "im02.png"}).json()
               if x["source"] == "model"]
    r = client.delete(f"/api/labels/{other}", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"deleted": other}
    assert sorted(lab.label for lab in store.labels() if lab.image == "im02.png") == ["bird", "dog"]
    history = store.history("im02.png")
    assert [(h.actor, h.reason) for h in history[-4:]] == [("ana", "human correction")] * 4
    assert history[-1].old is not None and history[-1].new is None and history[-1].label_id == other
    edit = next(h for h in history if h.label_id == first["label_id"] and h.actor == "ana")
    assert edit.old["label"] == "bird" and edit.new["label"] == "dog"  # type: ignore[index]


def test_bad_boxes_unknown_ids_and_stale_edits_are_4xx(client: TestClient) -> None:
    for bad in ([60, 0, 10, 10], [-1, 0, 5, 5], [0, 0, 0, 5], [0, 40, 5, 9]):
        r = client.post("/api/labels", json={"path": "im00.png", "label": "cat", "box": bad}, headers=AUTH)
        assert r.status_code == 422 and "box" in json.dumps(r.json()["detail"]), bad
    r = client.post("/api/labels", json={"path": "im00.png", "label": "cat", "box": [1, 2, 3]}, headers=AUTH)
    assert r.status_code == 422 and "box" in json.dumps(r.json()["detail"])
    r = client.post("/api/labels", json={"path": "im00.png", "label": "cow", "box": [1, 2, 3, 4]}, headers=AUTH)
    assert r.status_code == 422 and "'cow'" in r.json()["detail"]
    assert client.delete("/api/labels/99999", headers=AUTH).status_code == 404
    r = client.post("/api/labels", json={"path": "im00.png", "label_id": 99999, "label": "cat"}, headers=AUTH)
    assert r.status_code == 404 and "99999" in r.json()["detail"]
    assert client.delete("/api/labels/1").status_code == 401  # writes need the token
    item = client.get("/api/queue", params={"limit": 1}).json()["items"][0]
    bob = {"Authorization": f"Bearer {BOB}"}
    assert client.post("/api/labels", json={"path": item["path"], "label_id": item["label_id"], "label": "bird",
                                            "version": item["updated_at"]}, headers=bob).status_code == 200
    stale = client.post("/api/labels", json={"path": item["path"], "label_id": item["label_id"], "label": "dog",
                                             "version": item["updated_at"]}, headers=AUTH)
    assert stale.status_code == 409 and "changed" in stale.json()["detail"]
    r = client.delete(f"/api/labels/{item['label_id']}", params={"version": item["updated_at"]}, headers=AUTH)
    assert r.status_code == 409
    r = client.post("/api/labels", json={"path": "im03.png", "label_id": item["label_id"], "label": "dog"},
                    headers=AUTH)
    assert r.status_code == 404  # the id is a box of another image
    assert client.get("/api/progress").status_code == 200  # still up


def test_accept_image_makes_it_done_and_a_seed_for_the_next_run(client: TestClient, store: LabelStore) -> None:
    before = client.get("/api/box_progress").json()
    assert before == {"boxes": 2 * N_IMAGES, "human": 0, "to_review": 2 * N_IMAGES, "images": N_IMAGES,
                      "images_done": 0}
    r = client.post("/api/boxes/accept_image", json={"path": "im04.png"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"accepted": 2}
    after = client.get("/api/box_progress").json()
    assert (after["human"], after["to_review"], after["images_done"]) == (2, 2 * N_IMAGES - 2, 1)
    assert [lab.rank for lab in store.labels() if lab.image == "im04.png"] == [0, 0]  # alternative removed
    # an image whose every box the reviewer deleted is reviewed too: "nothing here"
    for x in client.get("/api/boxes", params={"path": "im05.png"}).json():
        assert client.delete(f"/api/labels/{x['label_id']}", headers=AUTH).status_code == 200
    reviewed = store.reviewed_box_images()
    assert sorted(reviewed) == ["im04.png", "im05.png"] and reviewed["im05.png"] == []
    assert sorted(lab.label for lab in reviewed["im04.png"]) == sorted([CLASSES[1], CLASSES[2]])


def test_export_and_coco_endpoint_reflect_human_boxes(client: TestClient, ws: Path, capsys) -> None:
    client.post("/api/labels", json={"path": "im01.png", "label": "bird", "box": [40, 2, 10, 12]}, headers=AUTH)
    coco = client.get("/api/labels.coco.json").json()
    names = {c["id"]: c["name"] for c in coco["categories"]}
    human = [(a["bbox"], names[a["category_id"]]) for a in coco["annotations"] if "score" not in a]
    assert human == [([40.0, 2.0, 10.0, 12.0], "bird")]
    assert main(["export", str(ws)]) == 0
    assert "labels.coco.json" in capsys.readouterr().out
    written = json.loads((ws / "labels.coco.json").read_text())
    human = [a for a in written["annotations"] if "score" not in a]
    assert len(human) == 1 and human[0]["bbox"] == [40.0, 2.0, 10.0, 12.0]
    assert len(written["annotations"]) == 3 * N_IMAGES + 1  # model answers and alternatives stay scored
    assert {i["file_name"] for i in written["images"]} == {f"im{i:02d}.png" for i in range(N_IMAGES)}


def test_page_draws_boxes_for_a_box_workspace(client: TestClient) -> None:
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200 and "const IMAGES" in page.text
    data = json.loads(page.text.split("const IMAGES = ", 1)[1].split(";\n", 1)[0])
    assert [d["path"] for d in data][:2] == ["im00.png", "im01.png"]  # least confident first
    assert data[0]["width"] == W and data[0]["height"] == H and len(data[0]["boxes"]) == 2
