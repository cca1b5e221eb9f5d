"""The review app's HTTP API (FastAPI TestClient, in process) on a tiny real workspace."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixlabel.errors import InputError
from pixlabel.review import ReviewSettings, create_app
from pixlabel.review.files import image_root, safe_image_path
from pixlabel.store import LabelStore, open_store
from pixlabel.workspace import Workspace
from test_review_queue import N_IMAGES, make_workspace

ANA, BOB = "ana-secret-1", "bob-secret-2"
AUTH = {"Authorization": f"Bearer {ANA}"}


def client_for(ws: Path, store: LabelStore, *, open_reads: bool = True) -> TestClient:
    settings = ReviewSettings(image_root(Workspace(ws)), {ANA: "ana", BOB: "bob"}, open_reads=open_reads)
    return TestClient(create_app(store, settings))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)


@pytest.fixture
def store(ws: Path) -> LabelStore:
    with open_store(ws / "pixlabel.db") as s:
        yield s


@pytest.fixture
def client(ws: Path, store: LabelStore) -> TestClient:
    return client_for(ws, store)


def test_queue_least_confident_first_with_cursor_and_filters(client: TestClient) -> None:
    body = client.get("/api/queue", params={"limit": 5}).json()
    assert [x["path"] for x in body["items"]] == [f"img{i:02d}.png" for i in range(5)]
    assert set(body["items"][0]) >= {"path", "label", "confidence", "status", "source"}
    rest = client.get("/api/queue", params={"limit": 50, "after": body["next_cursor"]}).json()
    assert len(rest["items"]) == N_IMAGES - 5 and rest["next_cursor"] is None
    dogs = client.get("/api/queue", params={"label": "dog", "status": "review"}).json()["items"]
    assert [x["path"] for x in dogs] == ["img01.png", "img04.png"]
    bad = client.get("/api/queue", params={"label": "cow"})
    assert bad.status_code == 400 and "unknown class 'cow'" in bad.json()["detail"]


def test_post_label_needs_a_valid_token_and_stores_a_human_label(client: TestClient, store: LabelStore) -> None:
    assert client.post("/api/labels", json={"path": "img00.png", "label": "dog"}).status_code == 401
    wrong = client.post("/api/labels", json={"path": "img00.png", "label": "dog"},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.post("/api/labels", json={"path": "img00.png", "label": "dog"}, headers=AUTH)
    assert ok.status_code == 200
    assert {k: ok.json()[k] for k in ("path", "label", "confidence", "status", "source", "labeler")} == {
        "path": "img00.png", "label": "dog", "confidence": 1.0, "status": "accepted", "source": "human",
        "labeler": "ana"}
    [stored] = [x for x in store.labels() if x.image == "img00.png"]
    assert (stored.label, stored.source, stored.status) == ("dog", "human", "accepted")
    last = store.history("img00.png")[-1]
    assert last.actor == "ana" and last.old["label"] == "cat" and last.new["label"] == "dog"  # type: ignore[index]


def test_unknown_class_or_image_is_a_4xx_naming_it(client: TestClient) -> None:
    r = client.post("/api/labels", json={"path": "img00.png", "label": "cow"}, headers=AUTH)
    assert r.status_code == 422 and "'cow'" in r.json()["detail"] and "cat" in r.json()["detail"]
    r = client.post("/api/labels", json={"path": "nope.png", "label": "cat"}, headers=AUTH)
    assert r.status_code == 404 and "'nope.png'" in r.json()["detail"]
    assert client.post("/api/labels", json={"path": "img00.png"}, headers=AUTH).status_code == 422


def test_two_reviewers_last_write_wins_and_both_are_in_history(client: TestClient, store: LabelStore) -> None:
    client.post("/api/labels", json={"path": "img02.png", "label": "cat"}, headers=AUTH)
    client.post("/api/labels", json={"path": "img02.png", "label": "dog"}, headers={"Authorization": f"Bearer {BOB}"})
    assert store.current_label("img02.png").label == "dog"  # type: ignore[union-attr]
    history = client.get("/api/history", params={"path": "img02.png"}).json()
    assert [(h["actor"], h["old"]["label"], h["new"]["label"]) for h in history[-2:]] == [
        ("ana", "bird", "cat"), ("bob", "cat", "dog")]
    assert all(h["at"] for h in history)


def test_undo_and_bulk_accept_through_the_api(client: TestClient, store: LabelStore) -> None:
    client.post("/api/labels", json={"path": "img00.png", "label": "dog"}, headers=AUTH)
    r = client.post("/api/undo", json={"path": "img00.png"}, headers=AUTH)
    assert r.status_code == 200 and (r.json()["label"], r.json()["source"]) == ("cat", "model")
    assert client.post("/api/undo", json={"path": "img00.png"}, headers=AUTH).status_code == 409
    r = client.post("/api/bulk_accept", json={"label": "dog", "min_confidence": 0.5}, headers=AUTH)
    assert r.json() == {"accepted": 3}  # img04 (0.50), img07 (0.65), img10 (0.80)
    assert client.post("/api/bulk_accept", json={"label": "dog"}).status_code == 401
    progress = client.get("/api/progress").json()
    assert progress["human"] == 3 and progress["total"] == N_IMAGES
    assert 0 < progress["estimated_accuracy"] <= 1


def test_labels_csv_is_the_store_export(client: TestClient, ws: Path, store: LabelStore) -> None:
    client.post("/api/labels", json={"path": "img03.png", "label": "bird"}, headers=AUTH)
    r = client.get("/api/labels.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0])[:5] == ["path", "label", "confidence", "source", "status"]
    assert len(rows) == N_IMAGES
    assert {k: rows[3][k] for k in ("path", "label", "source")} == {"path": "img03.png", "label": "bird",
                                                                    "source": "human"}
    store.export_labels_csv(ws / "labels.csv")
    assert (ws / "labels.csv").read_text() == r.text


def test_images_are_served_from_the_root_only(client: TestClient, ws: Path, tmp_path: Path) -> None:
    r = client.get("/img/img00.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    secret = tmp_path / "secret.png"
    secret.write_bytes((tmp_path / "images" / "img00.png").read_bytes())
    os.symlink(secret, tmp_path / "images" / "link.png")
    assert client.get("/img/link.png").status_code == 404  # a symlink leading out of the root (issue 20: no 403)
    assert client.get("/img/..%2Fsecret.png").status_code in (400, 404)
    assert client.get("/img/%2E%2E/secret.png").status_code in (400, 404)
    assert client.get("/img/missing.png").status_code == 404
    (tmp_path / "images" / "extra.png").write_bytes(secret.read_bytes())
    assert client.get("/img/extra.png").status_code == 404  # under the root but not in the store
    root = image_root(Workspace(ws))
    for bad in ("../secret.png", "/etc/passwd", "a/../../secret.png", "./img00.png", ""):
        with pytest.raises(InputError):
            safe_image_path(root, bad)


def test_reads_need_the_token_when_not_on_loopback(ws: Path, store: LabelStore) -> None:
    client = client_for(ws, store, open_reads=False)
    for url in ("/api/queue", "/api/labels.csv", "/img/img00.png", "/api/progress", "/"):
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers=AUTH).status_code == 200, url
    r = client.get(f"/?token={ANA}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/" and ANA in r.headers["set-cookie"]
    client.cookies.set("pixlabel_token", ANA)
    assert client.get("/img/img00.png").status_code == 200  # <img> tags authenticate by the cookie
    assert client.post("/api/labels", json={"path": "img00.png", "label": "dog"}).status_code == 401  # not writes


def test_page_renders_queue_filters_progress_and_docs(client: TestClient) -> None:
    page = client.get("/", params={"label": "dog", "status": "", "source": ""})
    assert page.status_code == 200
    assert page.text.count('class="card ') == 4 and 'data-path="img01.png"' in page.text
    assert "estimated label accuracy" in page.text and "remaining" in page.text
    assert client.get("/", params={"status": "done"}).status_code == 400
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/queue", "/api/labels", "/api/labels.csv"} <= set(paths)


def test_a_restart_keeps_everything(ws: Path) -> None:
    with open_store(ws / "pixlabel.db") as store:
        r = client_for(ws, store).post("/api/labels", json={"path": "img05.png", "label": "cat"}, headers=AUTH)
        assert r.status_code == 200
    with open_store(ws / "pixlabel.db") as again:
        items = client_for(ws, again).get("/api/queue", params={"source": "human"}).json()["items"]
        assert [(x["path"], x["label"]) for x in items] == [("img05.png", "cat")]
