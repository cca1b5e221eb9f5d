"""The CLI prints like a tool: no third-party INFO logs unless -v, and progress as bars only on a terminal."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixlabel import progress
from pixlabel.store import open_store
from pixlabel.workspace import Workspace

SRC = Path(__file__).parents[1] / "src"


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "pixlabel.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def fresh_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    with open_store(ws.db_path) as store:
        store.sync_images([("a.png", "h")])
    (ws.db_path).unlink()  # the next open runs every migration again, and alembic logs each at INFO
    for extra in ws.root.glob("pixlabel.db-*"):
        extra.unlink()
    return ws


def test_normal_output_has_no_alembic_lines_and_verbose_brings_them_back(fresh_workspace):
    quiet = run_cli("export", str(fresh_workspace.root), "--db", str(fresh_workspace.root / "new.db"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("wrote 0 labels to ")
    loud = run_cli("-v", "export", str(fresh_workspace.root), "--db", str(fresh_workspace.root / "new2.db"))
    assert loud.returncode == 0
    assert "INFO alembic.runtime.migration: Running upgrade" in loud.stderr


def test_pixlabel_info_reads_as_plain_lines_and_warnings_are_marked():
    stream = io.StringIO()
    progress.configure_logging(quiet=False, verbose=False)
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "pixlabel-cli")
    handler.setStream(stream)
    logging.getLogger("pixlabel.test").info("embedded 10 images")
    logging.getLogger("pixlabel.test").warning("3 images unreadable")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
    logging.getLogger("somelib").warning("deprecated thing")
    assert stream.getvalue().splitlines() == ["embedded 10 images", "warning: 3 images unreadable",
                                              "warning: somelib: deprecated thing"]
    progress.configure_logging(quiet=True, verbose=False)
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "pixlabel-cli")
    handler.setStream(stream := io.StringIO())
    logging.getLogger("pixlabel.test").info("embedded 10 images")
    assert stream.getvalue() == ""
    progress.set_enabled(True)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_is_a_bar_on_a_terminal_and_one_line_elsewhere(monkeypatch, terminal):
    stream = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    progress.set_enabled(True)
    assert list(progress.progress(range(50), desc="ingest", unit="img")) == list(range(50))
    with progress.bar(desc="train", total=4, unit="step") as handle:
        for _ in range(4):
            handle.update(1)
        handle.set_postfix(loss="0.123")
    text = stream.getvalue()
    if terminal:
        assert "\r" in text and "ingest" in text  # tqdm's frames
    else:
        assert "\r" not in text
        lines = text.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("ingest: 50 img in ") and lines[1].startswith("train: 4 step in ")
        assert lines[1].endswith(", loss=0.123")


def test_quick_stages_print_nothing_and_quiet_hides_lines(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    list(progress.progress(range(3), desc="copy images"))  # far below MIN_SECONDS
    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    progress.set_enabled(False)
    try:
        list(progress.progress(range(3), desc="copy images"))
    finally:
        progress.set_enabled(True)
    assert stream.getvalue() == ""
    list(progress.progress(iter(range(3)), desc="no length"))  # a generator: no total to show
    assert stream.getvalue().startswith("no length: 3 it in ")
