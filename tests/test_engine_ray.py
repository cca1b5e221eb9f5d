"""Engines: ``--engine ray`` embeds on Ray Data actors with the same code as local and gives the same labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.datasets import fashion_mnist
from pixlabel.engines import get_engine
from pixlabel.engines.local import LocalEngine
from pixlabel.errors import InputError
from pixlabel.pipeline.config import LabelConfig

PER_CLASS, SEEDS, CLASSES = 20, 4, (0, 1, 5, 8)  # t-shirt, trouser, sandal, bag: 80 images, 16 seeds


def test_engine_choice_and_config_validation():
    assert isinstance(get_engine("local"), LocalEngine)
    assert get_engine("ray", address="ray://head:10001").name == "ray"  # connecting is lazy
    with pytest.raises(InputError, match="known: local, ray"):
        get_engine("spark")
    with pytest.raises(InputError, match="--engine ray"):
        get_engine("local", address="auto")
    assert LabelConfig(images="i", out="o", engine="ray", ray_address="auto").engine == "ray"
    with pytest.raises(ValueError, match="local or ray"):
        LabelConfig(images="i", out="o", engine="spark")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, Path]:
    ds = fashion_mnist()
    root = tmp_path_factory.mktemp("fm")
    images = root / "images"
    images.mkdir()
    rows = []
    for k in CLASSES:
        idx = np.flatnonzero(ds.labels[60000:] == k)[:PER_CLASS] + 60000
        for j, i in enumerate(idx):
            name = f"{i}.png"
            Image.fromarray(ds.images[i]).save(images / name)
            if j < SEEDS:
                rows.append([name, ds.classes[k]])
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    seeds = root / "seeds.csv"
    with seeds.open("w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label"], *rows])
    return images, seeds


@pytest.fixture(scope="module")
def ray_session():
    import ray

    from pixlabel.engines.ray_engine import ensure_ray

    ensure_ray(None, num_cpus=2)
    yield
    ray.shutdown()


def _labels(ws: Path) -> dict[str, str]:
    with (ws / "labels.csv").open(newline="") as fh:
        return {r["path"]: r["label"] for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_ray_labels_and_embeddings_agree_with_local(image_folder, ray_session, tmp_path):
    images, seeds = image_folder
    common = ["-q", "label", str(images), "--labels", str(seeds), "--image-size", "32", "--method", "poisson",
              "--precision", "fp32"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    local, ray_ = _labels(tmp_path / "local"), _labels(tmp_path / "ray")
    assert len(local) == len(CLASSES) * PER_CLASS and set(local) == set(ray_)
    agree = np.mean([local[p] == ray_[p] for p in local])
    assert agree >= 0.99
    errors = (tmp_path / "ray" / "errors.csv").read_text()
    assert "broken.png" in errors  # the bad image is reported, not fatal, on the workers too

    # `pixlabel embed --engine ray`: same rows, same order, same vectors as local
    assert main(["-q", "embed", str(images), "--image-size", "32", "--precision", "fp32", "--engine", "ray",
                 "--out", str(tmp_path / "emb_ray")]) == 0
    assert main(["-q", "embed", str(images), "--image-size", "32", "--precision", "fp32",
                 "--out", str(tmp_path / "emb_local")]) == 0
    a, b = (np.load(tmp_path / d / "embeddings.npy") for d in ("emb_ray", "emb_local"))
    assert (tmp_path / "emb_ray" / "index.csv").read_text() == (tmp_path / "emb_local" / "index.csv").read_text()
    np.testing.assert_allclose(a, b, atol=1e-4)
