"""ONNX export: metadata carries the spec, outputs match PyTorch, INT8 and pruning work, CLI dispatches."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.datasets import fashion_mnist
from pixlabel.errors import InputError
from pixlabel.export import ExportOptions, export_model
from pixlabel.export.demo_model import train_smallcnn
from pixlabel.export.onnx_export import CLASSES_KEY, SPEC_KEY, read_onnx_spec
from pixlabel.export.onnx_runtime import OnnxPredictor
from pixlabel.export.prune import fine_tune, prune_module, sparsity
from pixlabel.models import load_predictor, save_model
from pixlabel.models.spec import load_model

N_TRAIN = 1500


@pytest.fixture(scope="module")
def fmnist():
    return fashion_mnist()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, fmnist):
    """A SmallCNN (width 8) trained one epoch on 1,500 Fashion-MNIST images: learned, not random, weights."""
    torch.manual_seed(0)
    net, spec = train_smallcnn(fmnist.images[:N_TRAIN], fmnist.labels[:N_TRAIN], fmnist.classes, epochs=1,
                               width=8)
    return save_model(tmp_path_factory.mktemp("m") / "model", net, spec)


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory, fmnist):
    """calib: 64 unlabeled training PNGs; labeled: 200 held-out PNGs in CLASS/ folders."""
    root = tmp_path_factory.mktemp("imgs")
    for i in range(N_TRAIN, N_TRAIN + 64):
        (root / "calib").mkdir(exist_ok=True)
        Image.fromarray(fmnist.images[i]).save(root / "calib" / f"{i}.png")
    for i in range(60000, 60200):
        d = root / "labeled" / fmnist.classes[fmnist.labels[i]]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fmnist.images[i]).save(d / f"{i}.png")
    (root / "calib" / "broken.png").write_bytes(b"not a png")  # one bad image never stops an export
    return root / "calib", root / "labeled"


def _pil(fmnist, idx):
    return [Image.fromarray(fmnist.images[i]) for i in idx]


@pytest.fixture(scope="module")
def fp32_onnx(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("o") / "model.onnx"
    rep = export_model(model_dir, out)
    return out, rep


@pytest.mark.slow  # trains a small model and runs torch's ONNX exporter (fixtures)
def test_fp32_export_matches_pytorch_and_carries_spec(model_dir, fp32_onnx, fmnist):
    out, rep = fp32_onnx
    _, spec = load_model(model_dir)
    assert read_onnx_spec(out) == spec
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta[CLASSES_KEY]) == list(fmnist.classes)
    assert json.loads(meta[SPEC_KEY])["image_size"] == [28, 28]
    assert rep.max_abs_diff < 1e-5 and rep.top1_agreement == 1.0 and rep.verified_on == "64 synthetic images"
    assert rep.size_bytes == out.stat().st_size and rep.latency_ms_b1 > 0 and rep.throughput_b64 > 0

    # load_predictor dispatches .onnx to OnnxPredictor; any batch size, same probabilities as PyTorch
    onnx_pred, torch_pred = load_predictor(out), load_predictor(model_dir)
    assert isinstance(onnx_pred, OnnxPredictor) and onnx_pred.spec == spec
    imgs = _pil(fmnist, range(60000, 60037)) + [Image.new("RGB", (50, 31), "red")]  # other size and mode
    got, want = onnx_pred.predict_proba(imgs), torch_pred.predict_proba(imgs)
    assert got.shape == (38, 10)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert onnx_pred.predict_proba([]).shape == (0, 10)


@pytest.mark.slow
def test_int8_is_static_qdq_calibrated_and_close(model_dir, fp32_onnx, image_dirs, tmp_path, fmnist):
    calib, labeled = image_dirs
    out = tmp_path / "int8.onnx"
    rep = export_model(model_dir, out, ExportOptions(int8=True, calib=calib, labeled=labeled))
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    assert rep.int8 and rep.size_bytes < 0.6 * rep.fp32_size_bytes  # int8 weights: ~4x smaller tensors
    assert rep.verified_on.startswith("64 images from")  # 64 readable of 65 files: the broken one skipped
    assert rep.max_abs_diff < 0.05 and rep.top1_agreement >= 0.95
    assert abs(rep.accuracy["onnx-int8"] - rep.accuracy["pytorch"]) <= 0.03
    assert read_onnx_spec(out) == read_onnx_spec(fp32_onnx[0])  # metadata survived quantization


def test_pruning_zeroes_weights_and_fine_tune_keeps_them_zero(model_dir, fmnist):
    net, spec = load_model(model_dir)
    before = [p.detach().clone() for p in net.parameters()]
    un = prune_module(net, amount=0.4)
    assert sparsity(un) == pytest.approx(0.4, abs=0.01)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # input untouched
    st = prune_module(net, amount=0.25, structured=True)
    conv = st.features[0]  # first conv: 8 filters, 2 zeroed whole
    zero_filters = int((conv.weight.detach().flatten(1).abs().sum(1) == 0).sum())
    assert zero_filters == 2
    assert st.head[1].weight.count_nonzero() == st.head[1].weight.numel()  # classifier stays dense
    from pixlabel.export.demo_model import gray_to_input

    x = gray_to_input(fmnist.images[:256], spec)
    tuned = fine_tune(un, x, fmnist.labels[:256], epochs=1)
    assert sparsity(tuned) >= 0.4 - 0.01
    with pytest.raises(ValueError, match="amount"):
        prune_module(net, amount=1.5)


@pytest.mark.slow
def test_cli_exports_model_dir_and_keeps_label_export(model_dir, image_dirs, tmp_path, capsys):
    _, labeled = image_dirs
    out = tmp_path / "p.onnx"
    report = tmp_path / "r.json"
    # no --format: a directory with model.yaml is a model
    code = main(["export", str(model_dir), "--out", str(out), "--prune", "0.5", "--labeled", str(labeled),
                 "--finetune-epochs", "1", "--report", str(report)])
    assert code == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "pruned: 50.0%" in text and "pruned+finetuned" in text
    data = json.loads(report.read_text())
    assert data["sparsity"] == pytest.approx(0.5, abs=0.01) and set(data["accuracy"]) == {
        "pytorch", "pruned", "pruned+finetuned", "onnx"}
    assert data["accuracy"]["onnx"] == data["accuracy"]["pruned+finetuned"]
    assert load_predictor(out).spec.classes == tuple(fashion_mnist().classes)


def test_cli_errors_are_exit_2(model_dir, tmp_path, capsys):
    assert main(["export", str(model_dir), "--format", "onnx", "--int8", "--out", str(tmp_path / "a.onnx")]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["export", str(model_dir), "--format", "onnx", "--out", str(tmp_path / "a.pt")]) == 2
    assert ".onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "a.onnx")]) == 2
    assert "model.yaml" in capsys.readouterr().err
    # a plain workspace without --format still means the label export
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "workspace" in capsys.readouterr().err


@pytest.mark.slow  # trains a small model and runs torch's ONNX exporter (fixtures)
def test_foreign_or_broken_onnx_is_input_error(tmp_path, fp32_onnx):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="bad.onnx"):
        OnnxPredictor(bad)
    plain = onnx.load(str(fp32_onnx[0]))
    del plain.metadata_props[:]
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(InputError, match="pixlabel.spec"):
        load_predictor(tmp_path / "plain.onnx")


@pytest.mark.slow  # runs torch's ONNX exporter
def test_onnx_predictor_applies_flip_tta_from_the_metadata(model_dir, fmnist, tmp_path):
    flip_dir = tmp_path / "flip"
    shutil.copytree(model_dir, flip_dir)
    spec_file = flip_dir / "model.yaml"
    spec_file.write_text(spec_file.read_text().replace("tta: none", "tta: flip"))
    out = tmp_path / "flip.onnx"
    rep = export_model(flip_dir, out)
    assert rep.max_abs_diff < 1e-5  # the graph itself is one pass, checked as always
    assert read_onnx_spec(out).tta == "flip"
    imgs = _pil(fmnist, range(60000, 60040))
    got = load_predictor(out).predict_proba(imgs)
    np.testing.assert_allclose(got, load_predictor(flip_dir).predict_proba(imgs), atol=1e-5)
    mirrored = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in imgs]
    plain = load_predictor(model_dir)
    np.testing.assert_allclose(got, (plain.predict_proba(imgs) + plain.predict_proba(mirrored)) / 2, atol=1e-5)
    assert np.abs(got - plain.predict_proba(imgs)).max() > 1e-3 and np.allclose(got.sum(1), 1, atol=1e-5)
