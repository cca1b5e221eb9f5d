"""LabelStore on SQLite and (when configured) PostgreSQL: overwrite rules, moves, history, export."""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixlabel.errors import InputError
from pixlabel.records import ERRORS_CSV_COLUMNS, LABELS_CSV_COLUMNS, Box, Label, Mask, Provenance
from pixlabel.store import LabelStore, open_store
from test_store_db import store_url  # noqa: F401  (fixture)

MODEL = Provenance(source="model", labeler="spread", model_version="v1", round=2)


def model_label(path: str, name: str, conf: float = 0.8, **kw: object) -> Label:
    return Label(path, name, conf, MODEL, status="review", **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(store_url: str) -> Iterator[LabelStore]:  # noqa: F811
    s = open_store(store_url)
    s.sync_images([("a.png", "ha", (40, 60)), ("b.png", "hb", (40, 60)), ("c.png", "hc")])
    s.ensure_classes(["cat", "dog", "bird"])
    yield s
    s.close()


def current(store: LabelStore, path: str) -> list[Label]:
    return [x for x in store.labels() if x.image == path]


def test_labels_round_trip_with_provenance_box_and_mask(store: LabelStore) -> None:
    box = Box(1.5, 2, 30, 20, image_size=(40, 60))
    mask = Mask(image_size=(40, 60), polygons=((1.0, 2.0, 10.0, 2.0, 10.0, 9.0),))
    created = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    prov = Provenance(source="model", labeler="det", model_version="m7", round=3, created_at=created)
    written = [Label("a.png", "cat", 0.625, prov, "review"), Label("a.png", "dog", 0.5, prov, box=box),
               Label("b.png", "bird", 0.25, prov, mask=mask)]
    result = store.put_labels(written)
    assert (result.inserted, result.updated, result.kept_human) == (3, 0, 0)
    got = store.labels()
    assert {(x.image, x.label) for x in got} == {("a.png", "cat"), ("a.png", "dog"), ("b.png", "bird")}
    by_label = {x.label: x for x in got}
    assert by_label["dog"].box == box
    assert by_label["bird"].mask == mask
    cat = by_label["cat"]
    assert (cat.confidence, cat.status) == (0.625, "review")
    assert (cat.provenance.labeler, cat.provenance.model_version, cat.provenance.round) == ("det", "m7", 3)
    assert cat.provenance.created_at == created and cat.provenance.created_at.tzinfo == dt.UTC
    assert store.put_labels(written).unchanged == 3  # stored exactly as given: re-putting changes nothing
    assert [x.label for x in store.labels(status="review")] == ["cat"]
    assert store.labels(source="human") == []


def test_model_label_never_overwrites_human(store: LabelStore) -> None:
    store.set_human_label("a.png", "cat", actor="ana")
    for source in ("model", "synthetic"):
        prov = Provenance(source=source, labeler="x")  # type: ignore[arg-type]
        result = store.put_labels([Label("a.png", "dog", 0.99, prov)])
        assert (result.kept_human, result.written) == (1, 0)
    [label] = current(store, "a.png")
    assert (label.label, label.source, label.provenance.labeler) == ("cat", "human", "ana")
    assert len(store.history("a.png")) == 1  # a skipped label is not a change


def test_human_label_overwrites_model_and_history_shows_it(store: LabelStore) -> None:
    store.put_labels([model_label("a.png", "dog", 0.7)], actor="pipeline")
    human = Label("a.png", "cat", 1.0, Provenance(source="human", labeler="bo"))
    result = store.put_labels([human], actor="bo")
    assert (result.updated, result.inserted) == (1, 0)
    [label] = current(store, "a.png")
    assert (label.label, label.source) == ("cat", "human")
    first, second = store.history("a.png")
    assert (first.old, first.new["label"], first.actor) == (None, "dog", "pipeline")  # type: ignore[index]
    assert (second.old["label"], second.old["source"]) == ("dog", "model")  # type: ignore[index]
    assert (second.new["label"], second.new["source"], second.actor) == ("cat", "human", "bo")  # type: ignore[index]
    assert first.label_id == second.label_id is not None


def test_newer_model_label_replaces_older_model_label_and_repeats_are_unchanged(store: LabelStore) -> None:
    store.put_labels([model_label("a.png", "dog", 0.6)])
    assert store.put_labels([model_label("a.png", "dog", 0.6)]).unchanged == 1
    assert store.put_labels([model_label("a.png", "bird", 0.9)]).updated == 1
    assert [(x.label, x.confidence) for x in current(store, "a.png")] == [("bird", 0.9)]
    assert len(store.history("a.png")) == 2


def test_within_one_batch_the_rule_applies_in_order(store: LabelStore) -> None:
    human = Label("b.png", "cat", 1.0, Provenance(source="human", labeler="h"))
    result = store.put_labels([model_label("b.png", "dog"), human, model_label("b.png", "bird")])
    assert result.kept_human == 1
    assert [(x.label, x.source) for x in current(store, "b.png")] == [("cat", "human")]


def test_model_boxes_are_replaced_per_image_and_human_boxes_kept(store: LabelStore) -> None:
    size = (40, 60)
    human_box = Label("a.png", "cat", 1.0, Provenance(source="human", labeler="h"), box=Box(0, 0, 5, 5, size))
    first = [model_label("a.png", "dog", box=Box(1, 1, 9, 9, size)),
             model_label("a.png", "dog", box=Box(2, 2, 8, 8, size))]
    store.put_labels([human_box, *first])
    store.put_labels([model_label("b.png", "bird", box=Box(3, 3, 4, 4, size))])
    again = store.put_labels(first)
    assert (again.unchanged, again.written, again.deleted) == (2, 0, 0)
    newer = [model_label("a.png", "bird", 0.9, box=Box(10, 10, 20, 20, size))]
    result = store.put_labels(newer)
    assert (result.deleted, result.inserted) == (2, 1)
    boxes = {(x.label, x.source, x.box.x1) for x in current(store, "a.png") if x.box}  # type: ignore[union-attr]
    assert boxes == {("cat", "human", 0.0), ("bird", "model", 10.0)}
    assert len(current(store, "b.png")) == 1  # other images' boxes untouched
    deleted = [h for h in store.history("a.png") if h.new is None]
    assert sorted(h.old["box"][0] for h in deleted) == [1.0, 2.0]  # type: ignore[index]


def test_box_on_image_of_another_size_is_refused_and_size_recorded(store: LabelStore) -> None:
    with pytest.raises(InputError, match=r"a\.png.*\(20, 20\)"):
        store.put_labels([model_label("a.png", "dog", box=Box(1, 1, 2, 2, (20, 20)))])
    store.put_labels([model_label("c.png", "dog", box=Box(1, 1, 2, 2, (20, 30)))])  # c.png had no size
    [label] = current(store, "c.png")
    assert label.box is not None and label.box.image_size == (20, 30)


def test_unknown_images_and_classes_are_input_errors_naming_them(store: LabelStore) -> None:
    with pytest.raises(InputError, match="nope.png"):
        store.set_human_label("nope.png", "cat", actor="ana")
    with pytest.raises(InputError, match="'cta'.*known: bird, cat, dog"):
        store.set_human_label("a.png", "cta", actor="ana")
    with pytest.raises(InputError, match="ghost.png"):
        store.put_labels([model_label("ghost.png", "cat")])
    with pytest.raises(InputError, match="actor"):
        store.set_human_label("a.png", "cat", actor="")
    with pytest.raises(InputError, match="run id 999"):
        store.put_labels([model_label("a.png", "cat")], run_id=999)
    with pytest.raises(InputError, match="status"):
        store.labels(status="done")
    assert store.labels() == []  # nothing half-written


def test_set_human_label_later_write_wins_and_both_are_in_history(store: LabelStore) -> None:
    before = dt.datetime.now(dt.UTC)
    store.set_human_label("a.png", "cat", actor="ana")
    returned = store.set_human_label("a.png", "dog", actor="bo")
    store.set_human_label("a.png", "dog", actor="cy")  # a confirmation is recorded too
    assert (returned.source, returned.status, returned.confidence) == ("human", "accepted", 1.0)
    [label] = current(store, "a.png")
    assert (label.label, label.provenance.labeler) == ("dog", "cy")
    history = store.history("a.png")
    assert [(h.actor, h.reason) for h in history] == [("ana", "human correction"), ("bo", "human correction"),
                                                      ("cy", "human correction")]
    assert history[0].old is None and history[0].new["label"] == "cat"  # type: ignore[index]
    assert (history[1].old["label"], history[1].new["label"]) == ("cat", "dog")  # type: ignore[index]
    assert all(h.at.tzinfo == dt.UTC and h.at >= before - dt.timedelta(seconds=1) for h in history)
    assert [h.at for h in history] == sorted(h.at for h in history)


def test_moved_file_keeps_its_labels(store: LabelStore) -> None:
    store.set_human_label("a.png", "cat", actor="ana")
    result = store.sync_images([("sub/a-renamed.png", "ha", (40, 60)), ("b.png", "hb"), ("new.png", "hn")])
    assert (result.moved, result.new, result.unchanged, result.missing) == (1, 1, 1, 1)  # c.png missing
    [label] = current(store, "sub/a-renamed.png")
    assert (label.label, label.source) == ("cat", "human")
    with pytest.raises(InputError, match="a.png"):
        store.history("a.png")
    move = store.history("sub/a-renamed.png")[-1]
    assert (move.reason, move.old, move.new) == ("moved", {"path": "a.png"}, {"path": "sub/a-renamed.png"})


def test_sync_counts_changed_content_and_does_not_move_present_files(store: LabelStore) -> None:
    # b.png is still present, so a new file with b's content is a copy, not a move.
    result = store.sync_images([("a.png", "ha-edited"), ("b.png", "hb"), ("c.png", "hc"), ("copy.png", "hb")])
    assert (result.changed, result.unchanged, result.new, result.moved) == (1, 2, 1, 0)
    assert store.history("a.png")[-1].new == {"content_hash": "ha-edited"}
    with pytest.raises(InputError, match="twice"):
        store.sync_images([("a.png", "x"), ("a.png", "y")])
    with pytest.raises(InputError, match="row 0"):
        store.sync_images([("a.png",)])  # type: ignore[list-item]


def test_errors_are_recorded_and_cleared_by_a_good_scan(store: LabelStore) -> None:
    store.record_errors([("broken.jpg", "cannot decode: truncated"), ("b.png", "zero bytes")])
    assert store.errors() == [("b.png", "zero bytes"), ("broken.jpg", "cannot decode: truncated")]
    store.sync_images([("a.png", "ha"), ("b.png", "hb2"), ("c.png", "hc")])
    assert store.errors() == [("broken.jpg", "cannot decode: truncated")]
    with pytest.raises(InputError, match="row 0"):
        store.record_errors([("x.png", "")])


def test_runs_are_recorded_and_labels_point_to_them(store: LabelStore, tmp_path: Path) -> None:
    run_id = store.start_run("label", {"threshold": 0.9, "root": tmp_path})
    assert store.run_info(run_id).status == "running"
    store.put_labels([model_label("a.png", "cat")], run_id=run_id)
    store.finish_run(run_id, stats={"labelled": 1})
    info = store.run_info(run_id)
    assert (info.status, info.stats, info.config["root"]) == ("finished", {"labelled": 1}, str(tmp_path))
    assert info.finished_at is not None and info.finished_at >= info.started_at
    assert store.history("a.png")[0].reason == f"run {run_id}"
    with pytest.raises(InputError, match="status"):
        store.finish_run(run_id, status="ok")


def test_close_and_reopen_keeps_everything(store_url: str) -> None:  # noqa: F811
    with open_store(store_url) as s:
        s.sync_images([("a.png", "ha", (8, 8)), ("b.png", "hb", (8, 8))])
        s.ensure_classes(["cat", "dog"])
        s.put_labels([model_label("a.png", "dog", box=Box(1, 1, 4, 4, (8, 8))), model_label("b.png", "dog")])
        s.set_human_label("b.png", "cat", actor="ana")
        s.record_errors([("bad.png", "unreadable")])
        run_id = s.start_run("label", {})
        labels, history = s.labels(), s.history("b.png")
    with open_store(store_url) as s:
        assert s.labels() == labels
        assert s.history("b.png") == history
        assert s.classes() == ["cat", "dog"]
        assert s.errors() == [("bad.png", "unreadable")]
        assert s.run_info(run_id).command == "label"
        assert s.sync_images([("a.png", "ha"), ("b.png", "hb")]).unchanged == 2


def test_export_csv_matches_the_contract(store: LabelStore, tmp_path: Path) -> None:
    store.set_human_label("a.png", "cat", actor="ana")
    store.put_labels([model_label("b.png", "dog", 0.75),
                      model_label("b.png", "bird", box=Box(1, 2, 3, 4, (40, 60)))])
    store.record_errors([("bad, name.png", 'cannot decode: "truncated"')])
    labels_csv, errors_csv = tmp_path / "labels.csv", tmp_path / "errors.csv"
    assert store.export_labels_csv(labels_csv) == 3
    assert store.export_errors_csv(errors_csv) == 1
    with labels_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0][: len(LABELS_CSV_COLUMNS)]) == LABELS_CSV_COLUMNS == ("path", "label", "confidence",
                                                                               "source", "status")
    body = [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]  # rows without a box may end early
    assert [(r["path"], r["label"], float(r["confidence"]), r["source"], r["status"]) for r in body] == [
        ("a.png", "cat", 1.0, "human", "accepted"),
        ("b.png", "dog", 0.75, "model", "review"),
        ("b.png", "bird", 0.8, "model", "review"),
    ]
    assert (float(body[2]["x1"]), float(body[2]["y2"]), body[1].get("x1", "")) == (1.0, 4.0, "")
    with errors_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [list(ERRORS_CSV_COLUMNS), ["bad, name.png", 'cannot decode: "truncated"']]


@pytest.mark.slow
def test_seventy_thousand_labels_take_seconds(store_url: str) -> None:  # noqa: F811
    n = 70_000
    with open_store(store_url) as s:
        s.sync_images([(f"d/{i:06d}.png", f"h{i}", (28, 28)) for i in range(n)])
        s.ensure_classes(["even", "odd"])
        started = time.perf_counter()
        first = s.put_labels([model_label(f"d/{i:06d}.png", ("even", "odd")[i % 2]) for i in range(n)])
        second = s.put_labels([model_label(f"d/{i:06d}.png", ("odd", "even")[i % 2], 0.9) for i in range(n)])
        elapsed = time.perf_counter() - started
        assert (first.inserted, second.updated) == (n, n)
        labels = s.labels()
        assert len(labels) == n and labels[1].label == "even" and labels[1].confidence == 0.9
        assert len(s.history(f"d/{n - 1:06d}.png")) == 2
    # Row-at-a-time writes take minutes here; batched ones take a few seconds even on a busy machine.
    assert elapsed < 60, f"2 x {n} labels took {elapsed:.0f} s"
