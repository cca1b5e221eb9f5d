"""The model directory contract: save → load round-trips predictions; bad directories are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.models import ModelSpec, load_predictor, save_model
from pixlabel.models.arch import build_model


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)) for _ in range(n)]


def test_save_load_round_trip_gives_same_probs(tmp_path):
    spec = ModelSpec(arch="smallcnn", classes=("a", "b", "c"), image_size=(28, 28), in_chans=1,
                     mean=(0.5,), std=(0.25,), arch_options={"width": 8})
    torch.manual_seed(0)
    net = build_model(spec).eval()
    save_model(tmp_path / "m", net, spec)
    pred = load_predictor(tmp_path / "m")
    assert pred.spec == spec
    imgs = _images(5)
    x = torch.from_numpy(spec.preprocess(imgs))
    assert x.shape == (5, 1, 28, 28)
    with torch.no_grad():
        want = torch.softmax(net(x), 1).numpy()
    got = pred.predict_proba(imgs)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.allclose(got.sum(1), 1.0, atol=1e-5)


def test_spec_rejects_unknown_keys_and_bad_dirs(tmp_path):
    with pytest.raises(InputError, match="unknown keys"):
        ModelSpec.from_dict({"arch": "smallcnn", "classes": ["a", "b"], "image_size": [8, 8], "colour": 1})
    with pytest.raises(InputError, match="not a model directory"):
        load_predictor(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="expected a model directory"):
        load_predictor(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="at least two classes"):
        ModelSpec(arch="smallcnn", classes=("a",), image_size=(8, 8))


def test_weights_for_another_arch_are_refused(tmp_path):
    spec = ModelSpec(arch="smallcnn", classes=("a", "b"), image_size=(16, 16), arch_options={"width": 8})
    save_model(tmp_path, build_model(spec), spec)
    (tmp_path / "model.yaml").write_text((tmp_path / "model.yaml").read_text().replace("width: 8", "width: 16"))
    with pytest.raises(InputError, match="do not fit"):
        load_predictor(tmp_path)


def test_flip_tta_averages_image_and_mirror_and_is_saved(tmp_path, one_torch_thread):
    spec = ModelSpec(arch="smallcnn", classes=("a", "b", "c"), image_size=(12, 16), in_chans=3,
                     arch_options={"width": 4}, tta="flip")
    torch.manual_seed(0)
    net = build_model(spec).eval()
    save_model(tmp_path / "m", net, spec)
    assert "tta: flip" in (tmp_path / "m" / "model.yaml").read_text()
    pred = load_predictor(tmp_path / "m")
    assert pred.spec.tta == "flip"
    imgs = _images(6)
    x = torch.from_numpy(spec.preprocess(imgs))
    with torch.no_grad():
        plain = torch.softmax(net(x), 1).numpy()
        mirrored = torch.softmax(net(x.flip(3)), 1).numpy()
    got = pred.predict_proba(imgs)
    np.testing.assert_allclose(got, (plain + mirrored) / 2, atol=1e-6)
    assert np.abs(got - plain).max() > 1e-4  # a random net is not mirror-symmetric (float noise is ~1e-7)
    assert np.allclose(got.sum(1), 1.0, atol=1e-5)
    assert pred.predict_proba([]).shape == (0, 3)


def test_unknown_tta_is_refused():
    with pytest.raises(InputError, match="tta"):
        ModelSpec.from_dict({"arch": "smallcnn", "classes": ["a", "b"], "image_size": [8, 8], "tta": "rotate"})
    old = ModelSpec.from_dict({"arch": "smallcnn", "classes": ["a", "b"], "image_size": [8, 8]})
    assert old.tta == "none"  # model.yaml files and ONNX metadata written before the field predict as before
    from pixlabel.models.spec import TTA_MODES
    from pixlabel.train import config

    assert config.TTA_MODES == TTA_MODES  # a copy, so `pixlabel --help` need not import numpy


def test_smallcnn_depth_adds_blocks_and_keeps_depth_one_weights_loadable(tmp_path):
    base = dict(arch="smallcnn", classes=("a", "b"), image_size=(28, 28), in_chans=1, mean=(0.5,), std=(0.25,))
    old = build_model(ModelSpec(**base, arch_options={"width": 8}))
    deep_spec = ModelSpec(**base, arch_options={"width": 8, "depth": 2})
    deep = build_model(deep_spec)
    # one more residual block (two 3x3 convs) per stage: 2 * (16*16*9) + 2 * (32*32*9) more conv weights
    extra = sum(p.numel() for p in deep.parameters()) - sum(p.numel() for p in old.parameters())
    assert extra >= 2 * 16 * 16 * 9 + 2 * 32 * 32 * 9
    # a model saved before --depth existed has exactly the depth-1 keys, so it still loads
    assert set(old.state_dict()) == set(build_model(ModelSpec(**base, arch_options={"width": 8, "depth": 1}))
                                        .state_dict())
    save_model(tmp_path / "deep", deep.eval(), deep_spec)
    pred = load_predictor(tmp_path / "deep")
    assert pred.spec.arch_options["depth"] == 2
    assert pred.predict_proba(_images(3)).shape == (3, 2)
