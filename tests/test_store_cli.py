"""``pixlabel export`` re-writes labels.csv and errors.csv from the workspace's label store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pixlabel.cli.main import main
from pixlabel.records import ERRORS_CSV_COLUMNS, LABELS_CSV_COLUMNS, Label, Provenance
from pixlabel.store import open_store
from pixlabel.workspace import Workspace


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def make_workspace(root: Path) -> Workspace:
    ws = Workspace.create(root)
    with open_store(ws.db_path) as store:
        store.sync_images([("a.png", "ha"), ("b.png", "hb")])
        store.ensure_classes(["cat", "dog"])
        store.put_labels([Label("b.png", "dog", 0.5, Provenance(source="model"), status="review")])
        store.set_human_label("a.png", "cat", actor="ana")
        store.record_errors([("broken.png", "cannot decode")])
    return ws


def test_export_writes_both_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = make_workspace(tmp_path / "ws")
    assert main(["export", str(ws.root)]) == 0
    rows = read_csv(ws.labels_csv)
    assert tuple(rows[0][:5]) == LABELS_CSV_COLUMNS
    got = [(r[0], r[1], float(r[2]), r[3], r[4]) for r in rows[1:]]
    assert got == [("a.png", "cat", 1.0, "human", "accepted"), ("b.png", "dog", 0.5, "model", "review")]
    assert read_csv(ws.errors_csv) == [list(ERRORS_CSV_COLUMNS), ["broken.png", "cannot decode"]]
    assert "wrote 2 labels" in capsys.readouterr().out


def test_export_from_an_explicit_database(tmp_path: Path) -> None:
    source = make_workspace(tmp_path / "src")
    target = Workspace.create(tmp_path / "out")
    assert main(["export", str(target.root), "--db", f"sqlite:///{source.db_path}"]) == 0
    assert len(read_csv(target.labels_csv)) == 3
    assert not target.db_path.exists()


def test_export_without_a_store_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = Workspace.create(tmp_path / "empty")
    assert main(["export", str(empty.root)]) == 2
    assert "pixlabel.db: no label store" in capsys.readouterr().err
    assert not empty.db_path.exists() and not empty.labels_csv.exists()
    assert main(["export", str(tmp_path / "missing")]) == 2
