"""`pixlabel label` checks every input before it reads a pixel: bad flags, config values and seed files exit 2
with a message naming the flag, file and row, and never reach ingest (hashing) or the backbone."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import pixlabel.pipeline.label as label_mod
from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.pipeline.config import LabelConfig


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real handwritten digits as PNG files, 4 of each class: ``d{k}_{i}.png``."""
    root = tmp_path_factory.mktemp("digits") / "images"
    root.mkdir()
    x, y = load_digits(return_X_y=True)
    for k in range(10):
        for i in np.flatnonzero(y == k)[:4]:
            Image.fromarray((x[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8)).save(root / f"d{k}_{i}.png")
    return root


@pytest.fixture
def no_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to hash the folder or build the backbone fails the test loudly (exit 1, not 2)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the run read images before its input checks failed")

    monkeypatch.setattr(label_mod, "ingest", refuse)
    monkeypatch.setattr(label_mod, "create_backbone", refuse)


def _label(images: Path, tmp_path: Path, *extra: str) -> int:
    return main(["label", str(images), "--out", str(tmp_path / "ws"), *extra])


def _csv(tmp_path: Path, text: str, name: str = "seeds.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(path)


def _two_per_class(images: Path) -> str:
    files = sorted(p.name for p in images.glob("*.png"))
    rows = [f for k in range(10) for f in [n for n in files if n.startswith(f"d{k}_")][:2]]
    return "path,label\n" + "".join(f"{f},{f.split('_')[0]}\n" for f in rows)


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--target-precision", "1.5", "--target-precision (config key target_precision) must be between 0 and 1"),
    ("--target-precision", "0", "must be between 0 and 1 (both excluded), got 0.0"),
    ("--image-size", "8", "--image-size (config key image_size) must be a whole number from 16 to 1024, got 8"),
    ("--image-size", "5000", "from 16 to 1024, got 5000"),
    ("--batch-size", "-4", "--batch-size (config key batch_size) must be a whole number from 1 to 4096, got -4"),
    ("--seed", "-1", "--seed (config key seed) must be a whole number from 0 to"),
    ("--max-pixels", "0", "--max-pixels (config key max_pixels) must be a whole number of at least 1, got 0"),
    ("--method", "magic", "--method (config key method) must be one of auto, labelspreading"),
    ("--classes", "cat", "--classes (config key classes) must list at least two"),
    ("--pseudo-threshold", "2", "--pseudo-threshold (config key pseudo_threshold) must be a number from 0 to 1"),
])
def test_out_of_range_flags_exit_2_naming_flag_and_range(digits: Path, tmp_path: Path, capsys, no_pixels,
                                                         flag: str, value: str, expected: str) -> None:
    assert _label(digits, tmp_path, "--labels", _csv(tmp_path, _two_per_class(digits)), flag, value) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("image_size: 8\n", "--image-size (config key image_size) must be a whole number from 16 to 1024, got 8"),
    ("image_size: big\n", "--image-size (config key image_size) must be a whole number, got 'big'"),
    ("target_precision: 97\n", "must be between 0 and 1 (both excluded), got 97.0"),
    ("workers: 0\n", "--workers (config key workers) must be a whole number from 1 to 256, got 0"),
    ("zero_shot: maybe\n", "--zero-shot (config key zero_shot) must be true or false, got 'maybe'"),
    ("engine: spark\n", "--engine (config key engine) must be local or ray, got 'spark'"),
])
def test_config_file_values_get_the_same_checks(digits: Path, tmp_path: Path, capsys, no_pixels,
                                                yaml_text: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    assert _label(digits, tmp_path, "--labels", _csv(tmp_path, _two_per_class(digits)), "--config", str(cfg)) == 2
    assert expected in capsys.readouterr().err


def test_config_checks_at_the_library_boundary_raise_input_error() -> None:
    with pytest.raises(InputError, match="cv-folds"):
        LabelConfig(images="i", out="o", cv_folds=1)
    assert LabelConfig(images="i", out="o", seed=3.0).seed == 3  # YAML may write whole numbers as floats
    assert LabelConfig(images="i", out="o", tta_scales=1).tta_scales == "1"  # YAML reads `1` as a number


@pytest.mark.parametrize(("text", "expected"), [
    ("path,label\nd0_0.png,d0\nd1_1.png,d1\nnope.png,d2\n", "row 4: image 'nope.png' not found under the image folder"),
    ("path,label\nd0_0.png,d0\nimages/d1_1.png,d1\n", "drop the leading 'images/'"),
    ("path,label\nd0_0.png,d0\nd1_1.png,d1,extra\n", "row 3: 3 cells but the header names 2"),
    ("file,class\nd0_0.png,d0\n", "row 1: the header must name the columns path and label"),
    ("path,label\nd0_0.png,d0\nd0_10.png,d0\n", "need seed labels for at least two classes, got d0 (2)"),
    ("path,label\nd0_0.png,d0\n\nd1_1.png,d1\nd0_0.png,d5\n", "rows 2 and 5: both label 'd0_0.png', as 'd0' and 'd5'"),
    ("path,label\n../secret.png,d0\nd1_1.png,d1\n", "row 2"),
    (b"path,label\nd0_0.png,\xff\xfe\n", "cannot read labels CSV"),
    ("", "row 1: the header must name the columns path and label"),
])
def test_bad_seed_files_fail_before_any_image_is_read(digits: Path, tmp_path: Path, capsys, no_pixels,
                                                      text: str | bytes, expected: str) -> None:
    assert _label(digits, tmp_path, "--labels", _csv(tmp_path, text)) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


def test_each_declared_class_must_be_seeded_before_reading(digits: Path, tmp_path: Path, capsys, no_pixels) -> None:
    seeds = _csv(tmp_path, "path,label\nd0_0.png,d0\nd1_1.png,d1\n")
    assert _label(digits, tmp_path, "--labels", seeds, "--classes", "d0,d1,d2") == 2
    assert "no seed labels for class(es) d2" in capsys.readouterr().err
    assert _label(digits, tmp_path, "--labels", seeds, "--classes", "d0,d2") == 2
    assert "seed labels use classes not in --classes: d1" in capsys.readouterr().err
    assert _label(digits, tmp_path, "--labels", str(tmp_path / "absent.csv")) == 2
    assert "--labels" in capsys.readouterr().err


def test_byte_identical_seeds_with_two_classes_name_both_rows(digits: Path, tmp_path: Path, capsys, no_pixels,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "images"
    shutil.copytree(digits, folder)
    shutil.copy(folder / "d3_3.png", folder / "copy_of_three.png")
    hashed: list[Path] = []
    import pixlabel.pipeline.seeds as seeds_mod

    real_hash = seeds_mod.content_hash
    monkeypatch.setattr(seeds_mod, "content_hash", lambda p: hashed.append(Path(p)) or real_hash(p))
    seeds = _csv(tmp_path, "path,label\nd0_0.png,d0\nd3_3.png,d3\nd1_1.png,d1\ncopy_of_three.png,d8\n")
    assert _label(folder, tmp_path, "--labels", seeds) == 2
    err = capsys.readouterr().err
    assert "rows 3 and 5: 'd3_3.png' and 'copy_of_three.png' are the same file (byte-identical)" in err, err
    assert "'d3' and 'd8'" in err
    assert 2 <= len(hashed) <= 4  # only the seeds sharing a file size were hashed, not the folder


def test_imagefolder_layout_with_one_class_fails_before_reading(digits: Path, tmp_path: Path, capsys,
                                                                no_pixels) -> None:
    folder = tmp_path / "imgs"
    (folder / "cats").mkdir(parents=True)
    for p in sorted(digits.glob("*.png"))[:5]:
        shutil.copy(p, folder / "cats" / p.name)
    shutil.copy(next(digits.glob("*.png")), folder / "top.png")
    assert _label(folder, tmp_path) == 2
    assert "need seed labels for at least two classes, got cats (5)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_seed_on_an_unreadable_file_is_skipped_or_named(digits: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    shutil.copytree(digits, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # listed, but cannot be decoded
    ok = _two_per_class(digits) + "broken.png,d9\n"
    assert _label(folder, tmp_path, "--image-size", "32", "--method", "poisson",
                  "--labels", _csv(tmp_path, ok)) == 0
    out = capsys.readouterr().out
    assert "1 seed image(s) could not be read and were skipped (see errors.csv): broken.png" in out
    only = "path,label\nd0_0.png,d0\nd0_10.png,d0\nbroken.png,d9\n"
    assert main(["-q", "label", str(folder), "--out", str(tmp_path / "ws2"), "--image-size", "32",
                 "--labels", _csv(tmp_path, only, "only.csv")]) == 2
    assert "class(es) d9 have no readable seed image left (broken.png could not be read" in capsys.readouterr().err
