"""The train / eval / explain commands end to end through ``pixlabel.cli.main``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixlabel.cli.main import main
from test_train_core import make_patterns


@pytest.mark.slow
def test_train_eval_explain_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_patterns(tmp_path / "train", n=120)
    make_patterns(tmp_path / "test", n=30, seed=4)
    model = tmp_path / "model"
    assert main(["-q", "train", str(tmp_path / "train"), "--labels", str(tmp_path / "train" / "labels.csv"),
                 "--out", str(model), "--epochs", "6", "--batch-size", "32", "--seed", "1", "--ema", "0.5",
                 "--depth", "2"]) == 0
    assert "trained smallcnn on 3 classes" in capsys.readouterr().out
    assert "ema: 0.5" in (model / "config.yaml").read_text()
    assert "depth: 2" in (model / "model.yaml").read_text()  # the saved spec rebuilds the deeper net
    assert main(["-q", "eval", str(model), str(tmp_path / "test"), "--labels", str(tmp_path / "test" / "labels.csv"),
                 "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8 and metrics["n"] == 30
    img = tmp_path / "test" / "images" / "000.png"
    assert main(["-q", "explain", str(model), str(img), "--method", "ig", "--out", str(tmp_path / "ig.png")]) == 0
    assert (tmp_path / "ig.png").is_file()


def test_bad_input_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_patterns(tmp_path / "d", n=6)
    labels = tmp_path / "wrong.csv"
    labels.write_text("path,label\nother/1.png,a\nother/2.png,b\n")
    assert main(["-q", "train", str(tmp_path / "d"), "--labels", str(labels), "--out", str(tmp_path / "m")]) == 2
    assert "wrong.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unknown choice itself
        main(["train", str(tmp_path / "d"), "--out", str(tmp_path / "m"), "--optimizer", "lbfgs"])
    assert exc.value.code == 2
    assert main(["-q", "eval", str(tmp_path / "m.onnx"), str(tmp_path / "d"), "--labels", str(labels),
                 "--out", str(tmp_path / "e"), "--attack", "pgd"]) == 2
    assert "no gradients" in capsys.readouterr().err
