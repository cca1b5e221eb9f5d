"""pixlabel explain: captum heat maps land on the pattern the model must use; PNGs are written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.explain import explain_images
from pixlabel.train import TrainConfig, train_model
from test_train_core import make_patterns, pattern


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A bright square top-left (tl), bottom-right (br), or no square (none): each square class must be
    # recognised by its square being there, not by the other one being absent.
    root = tmp_path_factory.mktemp("explain")
    make_patterns(root, n=150, classes=(1, 2, 3))
    out = root / "model"
    train_model(TrainConfig(images=str(root), labels=str(root / "labels.csv"), out=str(out), epochs=5,
                            batch_size=32, augment="none", seed=0))
    return out


def _box(size: int, corner: str) -> np.ndarray:
    """The square's region (grown by one pixel for interpolation blur) in the top-left or bottom-right."""
    s = size // 3
    box = np.zeros((size, size), bool)
    if corner == "tl":
        box[0:2 + s, 0:2 + s] = True
    else:
        box[size - s - 2:size, size - s - 2:size] = True
    return box


@pytest.mark.parametrize("method", ["gradcam", "ig", "lime", "shap"])
def test_heat_concentrates_on_the_square(model: Path, tmp_path: Path, method: str) -> None:
    rng = np.random.default_rng(3)
    paths = []
    for i, k in enumerate((2, 1)):
        p = tmp_path / f"img{i}_{k}.png"
        Image.fromarray(pattern(k, rng)).save(p)
        paths.append((p, k))
    done, errors = explain_images(model, [p for p, _ in paths], method=method, out=tmp_path / "out", n_samples=150)
    assert not errors and len(done) == 2
    for e, (_, k) in zip(done, paths, strict=True):
        assert e.predicted == ("br" if k == 1 else "tl")
        own, other = _box(16, e.predicted), _box(16, "tl" if e.predicted == "br" else "br")
        share, control = e.heat[own].sum() / e.heat.sum(), e.heat[other].sum() / e.heat.sum()
        # More heat on the square than on the same area in the opposite corner, and (except for the coarse
        # 4x4 Grad-CAM map, upsampled) well above the square's share of the image.
        assert share > 2 * control, f"{method}: {share:.2f} on the square vs {control:.2f} on the other corner"
        if method != "gradcam":
            assert share > 2 * own.mean(), f"{method}: {share:.2f} of the heat on {own.mean():.2f} of the image"
        png = Image.open(e.png)
        assert png.size[0] >= 224 and png.mode == "RGB"


def test_single_image_to_file_and_bad_input(model: Path, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(pattern(1, np.random.default_rng(0))).save(img)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    done, errors = explain_images(model, [img], method="gradcam", out=tmp_path / "cam.png")
    assert done[0].png == tmp_path / "cam.png" and (tmp_path / "cam.png").is_file()
    done, errors = explain_images(model, [img, broken], method="gradcam", out=tmp_path / "d", target="tl")
    assert len(done) == 1 and errors[0][0] == str(broken)
    with pytest.raises(InputError, match="not a class"):
        explain_images(model, [img], method="gradcam", out=tmp_path / "d", target="zebra")
    with pytest.raises(InputError, match="no gradients"):
        explain_images(tmp_path / "m.onnx", [img], method="ig", out=tmp_path / "d")
