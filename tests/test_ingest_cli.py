"""``pixlabel ingest`` end to end through the real argument parser."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.cli.main import main


def make_folder(root: Path) -> None:
    rng = np.random.default_rng(3)
    for rel in ["x/one.png", "x/two.jpg", "three.webp"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / rel)
    (root / "x" / "zero.jpg").write_bytes(b"")
    (root / "words.png").write_text("not a png")
    (root / "notes.txt").write_text("ignored")


def read_errors(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["path", "reason"]
        return list(reader)


def test_ingest_writes_errors_csv_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(tmp_path / "imgs")
    ws = tmp_path / "ws"
    assert main(["-q", "ingest", str(tmp_path / "imgs"), "--out", str(ws)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"5 images, 2 unreadable (see {ws / 'errors.csv'})"
    assert read_errors(ws / "errors.csv") == [
        {"path": "words.png", "reason": "not an image (cannot identify format)"},
        {"path": "x/zero.jpg", "reason": "empty file (0 bytes)"},
    ]


def test_all_good_folder_still_writes_a_header_only_errors_csv(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / "a.png")
    assert main(["-q", "ingest", str(tmp_path / "imgs"), "--out", str(tmp_path / "ws")]) == 0
    assert capsys.readouterr().out.strip() == "1 image, 0 unreadable"
    assert read_errors(tmp_path / "ws" / "errors.csv") == []


def test_max_pixels_flag_reaches_the_decoder(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (100, 100)).save(tmp_path / "imgs" / "big.png")
    Image.new("RGB", (10, 10)).save(tmp_path / "imgs" / "small.png")
    ws = tmp_path / "ws"
    assert main(["-q", "ingest", str(tmp_path / "imgs"), "--out", str(ws), "--max-pixels", "5000"]) == 0
    rows = read_errors(ws / "errors.csv")
    assert [r["path"] for r in rows] == ["big.png"]
    assert rows[0]["reason"].startswith("decompression bomb: 1.0e4 pixels exceeds the limit of 5.0e3")


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_unusable_folder_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            setup: str) -> None:
    folder = tmp_path / "photos"
    if setup == "empty":
        folder.mkdir()
        (folder / "readme.txt").write_text("no images here")
    assert main(["-q", "ingest", str(folder), "--out", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "pixlabel ingest: error:" in err and str(folder) in err
    assert not (tmp_path / "ws" / "errors.csv").exists()


@pytest.mark.parametrize("value", ["0", "-3", "lots"])
def test_bad_max_pixels_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         value: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ingest", str(tmp_path), "--out", str(tmp_path / "ws"), "--max-pixels", value])
    assert info.value.code == 2
    assert "positive whole number" in capsys.readouterr().err
