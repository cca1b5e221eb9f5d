"""Closing the loop: corrections made in the review app are seeds of the next ``pixlabel label`` run."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.label import _seed_labels
from pixlabel.review import ReviewSettings, create_app
from pixlabel.store import open_store


def test_review_corrections_become_seeds_and_outrank_the_seed_folder(tmp_path: Path) -> None:
    paths = ["cat/a.png", "dog/b.png", "unlabeled/c.png", "unlabeled/d.png"]
    with open_store(tmp_path / "pixlabel.db") as store:
        store.sync_images([(p, f"h-{p}") for p in paths])
        store.ensure_classes(["cat", "dog"])
        client = TestClient(create_app(store, ReviewSettings(tmp_path, {"s3cret": "ana"})))
        for path, label in (("unlabeled/c.png", "dog"), ("cat/a.png", "dog")):  # a new seed, a fixed seed
            r = client.post("/api/labels", json={"path": path, "label": label},
                            headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 200
        config = LabelConfig(images=str(tmp_path), out=str(tmp_path / "ws"))
        seeds, already_stored, reviewed = _seed_labels(config, paths, {}, store)
    assert seeds == {"cat/a.png": "dog", "dog/b.png": "dog", "unlabeled/c.png": "dog"}
    assert already_stored == {"cat/a.png", "unlabeled/c.png"}  # not re-written as "seed" labels
    assert reviewed == {"cat/a.png", "unlabeled/c.png"}  # trained on, never held out for calibration
