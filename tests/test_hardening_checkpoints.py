"""Crafted ``.pt`` files (a pickle that runs a command when unpickled) are refused everywhere pixlabel loads one:
train --resume (last.pt), model directories, detectors, GAN checkpoints. Nothing runs; the error names the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from pixlabel.errors import InputError
from pixlabel.models.checkpoint import load_weights_only
from test_train_core import config, make_patterns


class Payload:
    """Unpickling this runs ``touch MARKER`` — what a malicious checkpoint would do with worse commands."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def crafted(path: Path, marker: Path, **plain: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**plain, "payload": Payload(marker)}, path)
    return path


def test_the_payload_really_runs_when_fully_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.load(crafted(tmp_path / "x.pt", marker), weights_only=False)  # the danger the fix removes
    assert marker.exists()


def test_weights_only_refuses_and_names_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "x.pt", marker, net={"w": torch.zeros(2)})
    with pytest.raises(InputError, match=r"x\.pt: refusing to load this checkpoint"):
        load_weights_only(path)
    assert not marker.exists()
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"broken\.pt: not a readable checkpoint"):
        load_weights_only(tmp_path / "broken.pt")
    torch.save({"net": {"w": torch.ones(3)}, "history": [{"loss": 0.5}], "config": {"lr": None, "tta": "none"}},
               tmp_path / "plain.pt")
    assert load_weights_only(tmp_path / "plain.pt")["history"] == [{"loss": 0.5}]


def test_train_resume_refuses_a_crafted_last_pt(tmp_path: Path) -> None:
    from pixlabel.train import train_model

    make_patterns(tmp_path / "data", n=24)
    marker = tmp_path / "ran"
    out = tmp_path / "run"
    crafted(out / "last.pt", marker, epoch=1)
    with pytest.raises(InputError, match=r"last\.pt: refusing to load this training checkpoint"):
        train_model(config(tmp_path / "data", out, epochs=1, batch_size=8))
    assert not marker.exists()


@pytest.mark.slow
def test_train_resume_still_resumes_its_own_checkpoints(tmp_path: Path, one_torch_thread: None) -> None:
    from pixlabel.train import train_model

    make_patterns(tmp_path / "data", n=24)
    out = tmp_path / "run"

    def stop_after_one(epoch: int, row: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(config(tmp_path / "data", out, epochs=2, batch_size=8), on_epoch=stop_after_one)
    state = torch.load(out / "last.pt", weights_only=True)  # what pixlabel writes is plain data
    assert state["epoch"] == 1
    resumed = train_model(config(tmp_path / "data", out, epochs=2, batch_size=8))
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_model_detector_and_gan_loaders_refuse_crafted_files(tmp_path: Path) -> None:
    from pixlabel.generate.gan import GanConfig, load_checkpoint
    from pixlabel.models import ModelSpec, load_model, save_model
    from pixlabel.models.arch import build_model

    marker = tmp_path / "ran"
    spec = ModelSpec(arch="smallcnn", classes=("a", "b"), image_size=(16, 16), in_chans=3,
                     arch_options={"width": 4})
    model_dir = save_model(tmp_path / "model", build_model(spec), spec)
    crafted(model_dir / "weights.pt", marker)
    with pytest.raises(InputError, match=r"weights\.pt: refusing"):
        load_model(model_dir)

    from pixlabel.detect.spec import DETECTOR_FILE, WEIGHTS_FILE, DetectorSpec, load_detector

    det = tmp_path / "detector"
    det.mkdir()
    (det / DETECTOR_FILE).write_text(yaml.safe_dump(DetectorSpec(arch="fcos", classes=("a", "b")).to_dict()))
    crafted(det / WEIGHTS_FILE, marker)
    with pytest.raises(InputError, match=r"weights\.pt: refusing"):
        load_detector(det)

    gan = crafted(tmp_path / "gan" / "checkpoint.pt", marker, version=1)
    with pytest.raises(InputError, match=r"checkpoint\.pt: refusing"):
        load_checkpoint(gan, GanConfig(classes=("a", "b")))
    assert not marker.exists()

