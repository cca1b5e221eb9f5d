"""pixlabel train on tiny generated images: it learns, resumes exactly, is deterministic, handles bad input."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.models import load_model, load_predictor
from pixlabel.train import TrainConfig, train_model
from pixlabel.train.loop import _order
from pixlabel.train.losses import balanced_class_weights, soft_loss

CLASSES = ("bar", "br", "tl")  # sorted class names of the default three patterns
NAMES = ("bar", "br", "tl", "none")  # pattern k's label; "none" is noise only


def pattern(k: int, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """Noise plus one bright pattern: a middle bar (0), a bottom-right (1) or top-left (2) square, or none (3)."""
    a = rng.integers(0, 70, (size, size)).astype(np.uint8)
    s = size // 3
    if k == 0:
        a[size // 2 - 1:size // 2 + 1, :] = 230
    elif k == 1:
        a[size - s - 1:size - 1, size - s - 1:size - 1] = 230
    elif k == 2:
        a[1:1 + s, 1:1 + s] = 230
    return a


def make_patterns(root: Path, *, n: int = 150, classes: tuple[int, ...] = (0, 1, 2), seed: int = 0,
                  source: str = "model") -> Path:
    """``root/images/*.png`` + ``root/labels.csv`` (paths relative to root); returns the labels file."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["path,label,confidence,source,status"]
    for i in range(n):
        k = classes[i % len(classes)]
        Image.fromarray(pattern(k, rng)).save(root / "images" / f"{i:03d}.png")
        lines.append(f"images/{i:03d}.png,{NAMES[k]},0.9,{source},accepted")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def config(root: Path, out: Path, **kw: object) -> TrainConfig:
    opts: dict = dict(images=str(root), labels=str(root / "labels.csv"), out=str(out), epochs=3, batch_size=32,
                      val_fraction=0.2, seed=0)
    opts.update(kw)
    return TrainConfig(**opts)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("patterns")
    make_patterns(root)
    return root


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["net"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learns_and_writes_model_dir(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = train_model(config(data, out, epochs=4))
    assert result.best_val_acc is not None and result.best_val_acc >= 0.8  # chance is 1/3
    for name in ("model.yaml", "weights.pt", "last.pt", "config.yaml", "classes.txt", "curves.csv", "split.csv",
                 "errors.csv", "report.html"):
        assert (out / name).is_file(), name
    module, spec = load_model(out)
    assert spec.arch == "smallcnn" and spec.in_chans == 1 and spec.image_size == (16, 16)
    assert spec.classes == CLASSES
    assert (out / "classes.txt").read_text().split() == list(CLASSES)
    curves = list(csv.DictReader((out / "curves.csv").open()))
    assert [int(r["epoch"]) for r in curves] == [1, 2, 3, 4]
    assert "<polyline" in (out / "report.html").read_text()
    # The saved model directory predicts fresh images of each pattern.
    rng = np.random.default_rng(99)
    ks = [0, 1, 2] * 10
    probs = load_predictor(out).predict_proba([Image.fromarray(pattern(k, rng)) for k in ks])
    truth = [CLASSES.index(NAMES[k]) for k in ks]
    assert (probs.argmax(1) == np.array(truth)).mean() >= 0.8


@pytest.mark.slow
def test_resume_equals_uninterrupted_and_seed_is_deterministic(data: Path, tmp_path: Path) -> None:
    full = train_model(config(data, tmp_path / "a"))
    again = train_model(config(data, tmp_path / "b"))
    assert _same(_state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt"))
    assert full.history[-1]["train_loss"] == again.history[-1]["train_loss"]

    def stop_after_two(epoch: int, row: dict[str, float]) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(config(data, tmp_path / "c"), on_epoch=stop_after_two)
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=False)["epoch"] == 2
    resumed = train_model(config(data, tmp_path / "c"))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert _same(_state(tmp_path / "a" / "last.pt"), _state(tmp_path / "c" / "last.pt"))

    other = train_model(config(data, tmp_path / "d", seed=1))
    assert other.history[-1]["train_loss"] != full.history[-1]["train_loss"]
    # A finished run is not trained again; other settings in the same folder are refused.
    assert train_model(config(data, tmp_path / "a")).epochs_run == 3
    with pytest.raises(InputError, match="lr"):
        train_model(config(data, tmp_path / "a", lr=0.5))


def test_a_checkpoint_from_before_new_options_still_resumes(data: Path, tmp_path: Path) -> None:
    """last.pt written before --erase/--tta existed: the missing keys read as their defaults (off)."""
    out = tmp_path / "old"

    def stop_after_one(epoch: int, row: dict[str, float]) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(config(data, out, epochs=2), on_epoch=stop_after_one)
    state = torch.load(out / "last.pt", weights_only=False)
    for key in ("erase", "tta"):
        del state["config"][key]
    del state["spec"]["tta"]
    torch.save(state, out / "last.pt")
    assert [r["epoch"] for r in train_model(config(data, out, epochs=2)).history] == [1, 2]
    with pytest.raises(InputError, match="tta"):  # a real change is still refused
        train_model(config(data, out, epochs=2, tta="flip"))


@pytest.mark.parametrize("opts", [
    {"imbalance": "weights"}, {"imbalance": "focal"}, {"imbalance": "oversample"},
    {"augment": "strong", "mixup": 0.4, "cutmix": 1.0}, {"adversarial": "pgd", "eps": 0.05, "attack_steps": 2},
    {"adversarial": "fgsm", "eps": 0.05, "optimizer": "sgd", "schedule": "cosine"},
    {"optimizer": "adam", "schedule": "step", "confidence_weighted": True, "dropout": 0.1, "precision": "fp32"},
])
def test_training_options_run(data: Path, tmp_path: Path, opts: dict) -> None:
    result = train_model(config(data, tmp_path / "m", epochs=1, **opts))
    assert result.epochs_run == 1 and np.isfinite(result.history[0]["train_loss"])


def test_bad_rows_are_reported_and_skipped(data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    shutil.copytree(data, root)
    (root / "images" / "broken.png").write_bytes(b"not a png")
    rows = (root / "labels.csv").read_text().splitlines()
    rows += ["images/nope.png,tl,1,human,accepted", "images/broken.png,br,1,human,accepted",
             "images/000.png,tl,1,human,accepted"]  # 000.png is also labeled bar: ambiguous
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "m"
    with caplog.at_level(logging.WARNING, logger="pixlabel.train"):
        result = train_model(config(root, out, epochs=1))
    errors = {r["path"]: r["reason"] for r in csv.DictReader((out / "errors.csv").open())}
    assert set(errors) == {"images/nope.png", "images/broken.png", "images/000.png"}
    assert "missing" in errors["images/nope.png"]
    assert "ambiguous" in errors["images/000.png"]
    assert any("3 labeled rows skipped" in m for m in caplog.messages)
    assert result.epochs_run == 1


def test_labels_matching_no_image_name_the_file(data: Path, tmp_path: Path) -> None:
    labels = tmp_path / "elsewhere.csv"
    labels.write_text("path,label\nx/1.png,a\nx/2.png,b\n")
    with pytest.raises(InputError, match="elsewhere.csv"):
        train_model(TrainConfig(images=str(data), labels=str(labels), out=str(tmp_path / "m"), epochs=1))


def test_single_example_class_warns(data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = tmp_path / "labels.csv"
    rows = (data / "labels.csv").read_text().splitlines()[:41]
    path = rows[-1].split(",")[0]
    labels.write_text("\n".join(rows[:-1] + [f"{path},lonely,1,human,accepted"]) + "\n")
    with caplog.at_level(logging.WARNING, logger="pixlabel.train"):
        result = train_model(TrainConfig(images=str(data), labels=str(labels), out=str(tmp_path / "m"), epochs=1))
    assert any("'lonely' has only one example" in m for m in caplog.messages)
    assert "lonely" in result.spec.classes


def test_label_filters_and_synthetic(tmp_path: Path) -> None:
    real = tmp_path / "real"
    make_patterns(real, n=60, source="model")
    rows = (real / "labels.csv").read_text().splitlines()
    # Ten rows become human labels; --only-human must keep exactly those.
    rows[1:11] = [r.replace(",model,", ",human,") for r in rows[1:11]]
    (real / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="min_confidence=0.95"):
        train_model(config(real, tmp_path / "x", epochs=1, min_confidence=0.95))
    synth = tmp_path / "synth"
    make_patterns(synth, n=30, seed=5, source="synthetic")
    out = tmp_path / "m"
    train_model(config(real, out, epochs=1, only_human=True, synthetic=str(synth), val_fraction=0.0))
    split = list(csv.DictReader((out / "split.csv").open()))
    assert sum(r["source"] == "human" for r in split) == 10
    assert sum(r["source"] == "synthetic" for r in split) == 30
    assert all(r["split"] == "train" for r in split if r["source"] == "synthetic")


def test_soft_loss_matches_torch_cross_entropy() -> None:
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(20, 4, generator=g), torch.randint(0, 4, (20,), generator=g)
    w = balanced_class_weights(y.numpy(), 4)
    ours = soft_loss(logits, F.one_hot(y, 4).float(), smoothing=0.1, class_weights=w)
    ref = F.cross_entropy(logits, y, weight=w, label_smoothing=0.1)
    # torch applies the class weight inside the smoothing sum; equal without smoothing:
    assert torch.allclose(soft_loss(logits, F.one_hot(y, 4).float(), class_weights=w),
                          F.cross_entropy(logits, y, weight=w), atol=1e-6)
    assert torch.allclose(soft_loss(logits, F.one_hot(y, 4).float(), smoothing=0.1),
                          F.cross_entropy(logits, y, label_smoothing=0.1), atol=1e-6)
    assert ours.item() > 0 and ref.item() > 0
    focal = soft_loss(logits, F.one_hot(y, 4).float(), gamma=2.0)
    assert focal < F.cross_entropy(logits, y)  # focal only ever down-weights


def test_oversampling_balances_classes() -> None:
    y = np.array([0] * 900 + [1] * 100)
    order = _order(y, oversample=True, rng=np.random.default_rng(0))
    share = (y[order] == 1).mean()
    assert 0.45 < share < 0.55
    assert sorted(_order(y, oversample=False, rng=np.random.default_rng(0))) == list(range(1000))


@pytest.mark.slow
def test_larger_rgb_images_get_the_pretrained_timm_default_and_freeze(tmp_path: Path) -> None:
    from pixlabel.backbones.timm_models import lite0_package_state

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    lines = ["path,label"]
    for i in range(24):
        rgb = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
        rgb[..., i % 2] = 255  # red vs green images
        Image.fromarray(rgb).save(tmp_path / "images" / f"{i}.png")
        lines.append(f"images/{i}.png,{'red' if i % 2 == 0 else 'green'}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "m"
    result = train_model(TrainConfig(images=str(tmp_path), labels=str(tmp_path / "labels.csv"), out=str(out),
                                     epochs=1, batch_size=8, image_size=32, freeze_backbone=True, val_fraction=0.0))
    assert result.spec.arch == "timm:tf_efficientnet_lite0" and result.spec.in_chans == 3
    trained = torch.load(out / "weights.pt", weights_only=True)
    pretrained = lite0_package_state()
    body = [k for k in trained if k in pretrained and trained[k].shape == pretrained[k].shape
            and trained[k].dtype.is_floating_point]
    assert len(body) > 50
    assert all(torch.equal(trained[k], pretrained[k]) for k in body)  # frozen backbone = ImageNet weights
    head = [k for k in trained if k.startswith("classifier.")]
    assert head and trained[head[0]].shape[0] == 2


def test_flip_shift_batch_crops_each_image_from_its_padded_or_flipped_copy() -> None:
    from pixlabel.train.augment import flip_shift_batch

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (300, 2, 6, 5), dtype=np.uint8))
    out = flip_shift_batch(x, pad=2, generator=torch.Generator().manual_seed(3))
    assert out.shape == (300, 2, 6, 5) and out.dtype == torch.float32
    seen = set()
    for img, res in zip(x.numpy(), out.numpy(), strict=True):
        found = [(f, dy, dx) for f in (0, 1)
                 for p in [np.pad(img[:, :, ::-1] if f else img, ((0, 0), (2, 2), (2, 2)), mode="edge")]
                 for dy in range(5) for dx in range(5)
                 if np.allclose(p[:, dy:dy + 6, dx:dx + 5] / 255, res)]
        assert found, "not a crop of the edge-padded (flipped) image"
        seen.add(found[0])
    assert len(seen) > 30 and {f for f, _, _ in seen} == {0, 1}  # both flips, many of the 25 offsets
    again = flip_shift_batch(x, pad=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)


def test_ema_weights_are_saved_and_resume_exactly(data: Path, tmp_path: Path) -> None:
    opts = dict(epochs=2, augment="basic", ema=0.9, val_fraction=0.0)
    train_model(config(data, tmp_path / "a", **opts))
    last = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    saved = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert _same(saved, ema)  # the model directory holds the average ...
    assert not _same(saved, last["net"])  # ... not the last step's weights

    def stop_after_one(epoch: int, row: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(config(data, tmp_path / "b", **opts), on_epoch=stop_after_one)
    train_model(config(data, tmp_path / "b", **opts))
    assert _same(saved, torch.load(tmp_path / "b" / "weights.pt", weights_only=True))
    with pytest.raises(InputError, match="--ema"):
        config(data, tmp_path / "c", ema=1.0)


def test_erase_batch_blanks_one_seeded_rectangle_per_chosen_image() -> None:
    from pixlabel.train.augment import erase_batch

    x = torch.full((400, 2, 10, 12), 0.5)
    out = erase_batch(x.clone(), p=0.5, generator=torch.Generator().manual_seed(7))
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1])  # one rectangle through every channel
    assert torch.equal(out[~zero], x[~zero])  # the rest untouched
    hit = zero.flatten(1).any(1)
    assert 0.4 < hit.float().mean() < 0.6  # p = 0.5 per image
    for m in zero[hit, 0]:  # each erased patch is one solid rectangle of 2-40 % of the image (+ rounding)
        rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
        assert int(m.sum()) == len(rows) * len(cols) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 2 <= int(m.sum()) <= 0.5 * m.numel()
    assert len({tuple(m.nonzero()[0].tolist()) for m in zero[hit, 0]}) > 20  # patches at many places
    assert torch.equal(out, erase_batch(x.clone(), p=0.5, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(out, erase_batch(x.clone(), p=0.5, generator=torch.Generator().manual_seed(8)))
    assert not (erase_batch(x.clone(), p=0.0, generator=torch.Generator()) == 0).any()


def test_training_with_erase_is_seeded_and_changes_the_run(data: Path, tmp_path: Path) -> None:
    runs = {name: train_model(config(data, tmp_path / name, epochs=1, augment="basic", val_fraction=0.0, **kw))
            for name, kw in (("a", {"erase": 0.5}), ("b", {"erase": 0.5}), ("off", {}))}
    assert _same(_state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt"))
    assert runs["a"].history[0]["train_loss"] != runs["off"].history[0]["train_loss"]
    light = train_model(config(data, tmp_path / "light", epochs=1, augment="light", erase=0.5))  # DataLoader path
    assert np.isfinite(light.history[0]["train_loss"])
    with pytest.raises(InputError, match="--erase"):
        config(data, tmp_path / "x", erase=1.5)


def test_flip_tta_is_saved_and_validated_like_the_predictor(data: Path, tmp_path: Path) -> None:
    from pixlabel.train.attacks import PixelSpace
    from pixlabel.train.loop import predict_logits

    result = train_model(config(data, tmp_path / "m", epochs=1, tta="flip"))
    assert result.spec.tta == "flip" and load_predictor(tmp_path / "m").spec.tta == "flip"
    net, spec = load_model(tmp_path / "m")
    model = PixelSpace(net, spec.mean, spec.std)
    x = np.random.default_rng(0).integers(0, 256, (9, 1, 16, 16), dtype=np.uint8)
    with torch.no_grad():
        x01 = torch.from_numpy(x).float() / 255
        want = (model(x01).softmax(1) + model(x01.flip(3)).softmax(1)) / 2
    got = torch.from_numpy(predict_logits(model, x, bf16=False, tta="flip"))
    torch.testing.assert_close(got.softmax(1), want, atol=1e-5, rtol=0)  # log-probs: softmax gives them back
    plain = torch.from_numpy(predict_logits(model, x, bf16=False)).softmax(1)
    assert (plain - want).abs().max() > 1e-4
    with pytest.raises(InputError, match="--tta"):
        config(data, tmp_path / "x", tta="rotate")
