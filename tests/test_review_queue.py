"""The review queue in the label store: paged SQL least-confident first, filters, progress, bulk accept, undo.

``make_workspace`` (a tiny real workspace: PNG files, config.yaml, a store with model labels) is shared by the
other test_review_*.py files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from sqlalchemy import event

from pixlabel.errors import InputError
from pixlabel.records import Label, Provenance
from pixlabel.store import LabelStore, open_store
from test_store_db import store_url  # noqa: F401  (fixture)

CLASSES = ["cat", "dog", "bird"]
N_IMAGES = 12


def fill_store(store: LabelStore, n: int = N_IMAGES) -> list[str]:
    """``n`` images labelled by a model, confidence rising with the index (img00 least confident; it repeats
    after ``N_IMAGES``)."""
    paths = [f"img{i:02d}.png" for i in range(n)]
    store.sync_images([(p, f"hash-{p}", (8, 8)) for p in paths])
    store.ensure_classes(CLASSES)
    store.put_labels([Label(p, CLASSES[i % 3], round(0.3 + 0.05 * (i % N_IMAGES), 4),
                            Provenance(source="model", labeler="poisson"),
                            status="review" if i < n // 2 else "accepted") for i, p in enumerate(paths)])
    return paths


def make_workspace(root: Path, n: int = N_IMAGES) -> Path:
    """A workspace as ``pixlabel label`` leaves it: WS/config.yaml naming the image folder, WS/pixlabel.db."""
    images, ws = root / "images", root / "ws"
    images.mkdir(parents=True)
    ws.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / f"img{i:02d}.png")
    (ws / "config.yaml").write_text(yaml.safe_dump({"images": str(images), "out": str(ws)}))
    with open_store(ws / "pixlabel.db") as store:
        fill_store(store, n)
    return ws


@pytest.fixture
def store(store_url: str) -> LabelStore:  # noqa: F811
    with open_store(store_url) as s:
        fill_store(s)
        yield s


def test_queue_pages_least_confident_first_and_cursor_walks_every_label(store: LabelStore) -> None:
    first = store.queue(limit=5)
    assert [x.path for x in first.items] == [f"img{i:02d}.png" for i in range(5)]
    assert first.items[0].as_dict()["confidence"] == pytest.approx(0.3)
    seen, cursor = [x.path for x in first.items], first.next_cursor
    while cursor:
        page = store.queue(limit=5, after=cursor)
        seen += [x.path for x in page.items]
        cursor = page.next_cursor
    assert seen == [f"img{i:02d}.png" for i in range(N_IMAGES)]
    assert [x.path for x in store.queue(limit=2, offset=3).items] == ["img03.png", "img04.png"]


def test_queue_filters_by_class_status_and_source(store: LabelStore) -> None:
    assert {x.label for x in store.queue(limit=100, label="dog").items} == {"dog"}
    assert len(store.queue(limit=100, label="dog").items) == 4
    assert [x.path for x in store.queue(limit=100, status="accepted").items][0] == "img06.png"
    store.set_human_label("img11.png", "cat", actor="ana")
    humans = store.queue(limit=100, source="human").items
    assert [(x.path, x.label, x.confidence, x.labeler) for x in humans] == [("img11.png", "cat", 1.0, "ana")]
    assert store.queue(limit=100, source="human", status="review").items == []


def test_queue_refuses_bad_filters_naming_them(store: LabelStore) -> None:
    with pytest.raises(InputError, match="unknown class 'cow'; known: cat, dog, bird"):
        store.queue(label="cow")
    with pytest.raises(InputError, match="unknown status 'done'"):
        store.queue(status="done")
    with pytest.raises(InputError, match="bad queue cursor"):
        store.queue(after="xyz")
    with pytest.raises(InputError, match="limit"):
        store.queue(limit=0)


def test_queue_pages_are_index_scans_not_sorts(tmp_path: Path) -> None:
    """EXPLAIN the very statements the store sends (captured from the engine) for each kind of filter."""
    with open_store(tmp_path / "p.db") as s:
        fill_store(s)
        sent: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "ORDER BY labels.confidence" in statement:
                sent.append((statement, params))

        event.listen(s._engine, "before_cursor_execute", capture)
        cursor = s.queue(limit=3).next_cursor
        for kw in ({}, {"after": cursor}, {"status": "review"}, {"source": "human"}, {"label": "dog"}):
            s.queue(limit=3, **kw)  # type: ignore[arg-type]
        event.remove(s._engine, "before_cursor_execute", capture)
        assert len(sent) == 6
        with s._engine.connect() as conn:
            for statement, params in sent:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params))
                assert "USING INDEX ix_labels_" in plan and "TEMP B-TREE" not in plan, plan


def test_progress_counts_and_estimated_accuracy(store: LabelStore) -> None:
    before = store.progress()
    assert (before.total, before.human, before.to_review) == (12, 0, 6)
    confidences = [round(0.3 + 0.05 * i, 4) for i in range(N_IMAGES)]
    assert before.estimated_accuracy == pytest.approx(sum(confidences) / 12)
    store.set_human_label("img00.png", "dog", actor="ana")
    after = store.progress()
    assert (after.human, after.to_review) == (1, 5)
    assert after.estimated_accuracy == pytest.approx((1 + sum(confidences[1:])) / 12)


def test_bulk_accept_a_confident_part_of_a_class(store: LabelStore) -> None:
    # cat = img00, 03, 06, 09 with confidences 0.30, 0.45, 0.60, 0.75
    assert store.accept_matching(label="cat", actor="ana", min_confidence=0.5) == 2
    cats = {x.path: x for x in store.queue(limit=100, label="cat").items}
    assert {p for p, x in cats.items() if x.source == "human"} == {"img06.png", "img09.png"}
    assert [h.reason for h in store.history("img06.png")][-1] == "bulk accept"
    assert store.accept_matching(label="cat", actor="ana", min_confidence=0.5) == 0  # humans stay as they are


def test_undo_restores_the_model_label_and_refuses_other_peoples_changes(store: LabelStore) -> None:
    store.set_human_label("img00.png", "dog", actor="ana")
    with pytest.raises(InputError, match="nothing of bob's to undo"):
        store.undo_last("img00.png", actor="bob")
    restored = store.undo_last("img00.png", actor="ana")
    assert (restored.label, restored.source, restored.status, restored.confidence) == ("cat", "model", "review", 0.3)
    assert [h.reason for h in store.history("img00.png")][-2:] == ["human correction", "undo"]
    with pytest.raises(InputError, match="nothing of ana's to undo"):
        store.undo_last("img00.png", actor="ana")  # an undo is not undone by undo
    store.set_human_label("img01.png", "cat", actor="ana")
    store.set_human_label("img01.png", "bird", actor="bob")
    with pytest.raises(InputError, match="nothing of ana's"):
        store.undo_last("img01.png", actor="ana")  # bob's later write stays
    assert store.current_label("img01.png").label == "bird"  # type: ignore[union-attr]
