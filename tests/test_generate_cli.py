"""`pixlabel generate` end to end on a tiny ImageFolder: outputs, resume, balance and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.cli.main import main

FAST = ["--image-size", "16", "--threads", "1"]


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    """Class k: a bright square at a class-specific place; sizes and modes vary on purpose."""
    rng = np.random.default_rng(0)
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = ((20, 30), (40, 40), (28, 28))[i % 3]
            img = rng.integers(0, 50, (h, w)).astype(np.uint8)
            img[2 + 4 * k: 10 + 4 * k, 3:w - 3] = 240
            pil = Image.fromarray(img)
            (pil.convert("RGB") if i % 2 else pil).save(root / name / f"{i:03d}.png")
    return root


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_generate_writes_images_labels_report_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_folder(tmp_path / "data", {"bar": 12, "ring": 11})
    (data / "bar" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "synth"
    assert main(["generate", str(data), "--per-class", "3", "--classes", "ring", "--out", str(out),
                 "--steps", "4", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 images" in printed and "class fidelity" in printed and "CAS" in printed
    rows = read_rows(out / "labels.csv")
    assert list(rows[0])[:5] == ["path", "label", "confidence", "source", "status"]
    assert len(rows) == 3 and {r["label"] for r in rows} == {"ring"}
    assert all(r["source"] == "synthetic" and r["status"] == "accepted" for r in rows)
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)
    for r in rows:  # paths are relative to the output folder; every image got the same size and mode
        with Image.open(out / r["path"]) as im:
            assert im.size == (16, 16) and im.mode == "L"
    assert "broken.png" in (out / "errors.csv").read_text()
    report = (out / "report.html").read_text()
    assert "ring" in report and "class fidelity" in report and "data:image/png;base64," in report
    q = json.loads((out / "quality.json").read_text())
    assert q["step"] == 4 and q["resumed_from"] == 0 and q["real_counts"] == {"bar": 12, "ring": 11}
    assert set(q["quality"]) >= {"fid", "fidelity", "cas", "min_diversity", "per_class"}

    # more steps on the same folder resume from the checkpoint; --balance tops "ring" up to 12
    assert main(["generate", str(data), "--balance", "--out", str(out), "--steps", "6", "--truncation", "1",
                 *FAST]) == 0
    q = json.loads((out / "quality.json").read_text())
    assert q["resumed_from"] == 4 and q["step"] == 6 and q["counts"] == {"bar": 0, "ring": 1}
    assert q["truncation"] == 1.0
    assert len(read_rows(out / "labels.csv")) == 1 and len(list((out / "images" / "ring").glob("*.png"))) == 1


@pytest.mark.slow
def test_generate_refuses_small_classes_foreign_checkpoints_and_unknown_classes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_folder(tmp_path / "data", {"bar": 12, "ring": 11, "dot": 3})
    out = tmp_path / "synth"
    assert main(["generate", str(data), "--balance", "--out", str(out), "--steps", "1", *FAST]) == 2
    assert "'dot' has 3 image(s)" in capsys.readouterr().err
    assert main(["generate", str(data), "--classes", "cat", "--per-class", "2", "--out", str(out), *FAST]) == 2
    assert "unknown class(es) cat" in capsys.readouterr().err
    assert main(["generate", str(data), "--out", str(out), *FAST]) == 2
    assert "--per-class N, or --balance" in capsys.readouterr().err
    assert main(["generate", str(data), "--balance", "--truncation", "0", "--out", str(out), *FAST]) == 2
    assert "--truncation must be > 0, got 0.0" in capsys.readouterr().err
    # "dot" was not asked for: it is left out of training, so the checkpoint's classes are [bar, ring]
    assert main(["generate", str(data), "--classes", "bar", "--per-class", "1", "--out", str(out),
                 "--steps", "1", *FAST]) == 0
    capsys.readouterr()
    other = make_folder(tmp_path / "other", {"bar": 10, "ring": 10, "star": 10})
    assert main(["generate", str(other), "--per-class", "1", "--out", str(out), "--steps", "2", *FAST]) == 2
    err = capsys.readouterr().err
    assert "trained for classes [bar, ring]" in err and "classes [bar, ring, star]" in err


def test_labels_csv_input_uses_only_accepted_human_labels(tmp_path: Path) -> None:
    from pixlabel.generate.data import load_labeled

    data = make_folder(tmp_path / "data", {"bar": 3, "ring": 2})
    (tmp_path / "labels.csv").write_text(
        "path,label,confidence,source,status\n"
        "bar/000.png,bar,1,human,accepted\nbar/001.png,bar,0.6,model,review\n"
        "ring/000.png,ring,1,synthetic,accepted\nring/001.png,ring,0.99,model,accepted\n", encoding="utf-8")
    got = load_labeled(data, tmp_path / "labels.csv", image_size=16)
    assert got.paths == ["bar/000.png", "ring/001.png"] and got.classes == ("bar", "ring")
    assert got.images.shape == (2, 1, 16, 16)
