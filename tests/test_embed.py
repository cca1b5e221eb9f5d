"""embed_files (decode, batch, cache, dedupe, bad files) and ``pixlabel embed`` end to end."""

from __future__ import annotations

import csv
import gzip
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from pixlabel.backbones import Backbone, create_backbone
from pixlabel.backbones.embed import THUMB_SIZE, Embedder, embed_files
from pixlabel.cli.main import main
from pixlabel.io.images import ImageFile
from pixlabel.io.ingest import ingest

TINY = "test_resnet"  # timm test architecture: random init is fine for plumbing tests
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def sample_images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8: Fashion-MNIST test images when installed, else smooth random blobs."""
    if FASHION.is_file():
        with gzip.open(FASHION) as fh:
            raw = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
        return raw[np.random.default_rng(seed).choice(len(raw), n, replace=False)].copy()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(3, 10)
        blob = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out[i] = np.clip(blob, 0, 255).astype(np.uint8)
    return out


def make_folder(root: Path, n: int = 6) -> list[str]:
    """n images (PNG grey, PNG RGB, JPEG), one exact duplicate and one broken file; returns good paths."""
    rng = np.random.default_rng(1)
    good = []
    for i, img in enumerate(sample_images(n)):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            path = sub / f"img{i}.png"
            Image.fromarray(img).save(path)  # greyscale
        elif i % 3 == 1:
            path = sub / f"img{i}.png"
            tint = rng.uniform(0.5, 1.0, 3)
            Image.fromarray((img[..., None] * tint).astype(np.uint8)).save(path)
        else:
            path = sub / f"img{i}.jpg"
            Image.fromarray(img).resize((56, 40)).save(path, quality=90)
        good.append(path.relative_to(root).as_posix())
    shutil.copy(root / good[0], root / "dup.png")
    good.append("dup.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return sorted(good)


def scan(root: Path) -> list[ImageFile]:
    return ingest(root, decode=False).images


@pytest.fixture(scope="module")
def tiny() -> Backbone:
    torch.manual_seed(0)
    return create_backbone(TINY, pretrained=False, image_size=48)


def reference_embedding(path: Path, backbone: Backbone) -> np.ndarray:
    """What the backbone gives for one file, computed the plain way (no threads, no batching, fp32)."""
    size = backbone.image_size
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor(backbone.mean).view(1, 3, 1, 1)) / torch.tensor(backbone.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return backbone.module.eval()(x)[0].numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_embed_files_rows_errors_and_thumbs(tmp_path: Path, tiny: Backbone) -> None:
    good = make_folder(tmp_path / "imgs")
    files = scan(tmp_path / "imgs")
    result = embed_files(files, tiny, precision="fp32", batch_size=3)
    assert [f.path for f in result.files] == good  # input order, broken file left out
    assert result.embeddings.shape == (len(good), tiny.dim)
    assert result.embeddings.dtype == np.float32
    assert result.thumbs.shape == (len(good), THUMB_SIZE, THUMB_SIZE, 3)
    assert result.thumbs.dtype == np.uint8
    assert [p for p, _ in result.errors] == ["a/broken.jpg"]
    assert "truncated" in result.errors[0][1] or "cannot" in result.errors[0][1]
    for i, f in enumerate(result.files):  # each row belongs to its file
        np.testing.assert_allclose(result.embeddings[i], reference_embedding(f.abs_path, tiny), atol=1e-4)
    grey = Image.open(result.files[0].abs_path).convert("RGB")
    grey = grey.resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
    assert np.abs(result.thumbs[0].astype(int) - np.asarray(grey, dtype=int)).max() <= 2


def test_duplicate_content_is_embedded_once(tmp_path: Path, tiny: Backbone,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_folder(tmp_path / "imgs")
    rows_run: list[int] = []
    real_call = Embedder.__call__

    def counting(self: Embedder, batch: np.ndarray) -> np.ndarray:
        rows_run.append(len(batch))
        return real_call(self, batch)

    monkeypatch.setattr(Embedder, "__call__", counting)
    result = embed_files(scan(tmp_path / "imgs"), tiny, precision="fp32")
    assert sum(rows_run) == len(good) - 1  # dup.png is a copy of another file
    paths = [f.path for f in result.files]
    emb = result.embeddings
    np.testing.assert_array_equal(emb[paths.index("dup.png")], emb[paths.index("b/img0.png")])


def test_cache_is_reused_across_runs_and_renames(tmp_path: Path, tiny: Backbone,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_folder(tmp_path / "imgs")
    cache = tmp_path / "cache"
    first = embed_files(scan(tmp_path / "imgs"), tiny, cache_dir=cache, precision="fp32", chunk=2)
    assert len(list(cache.rglob("part-*.npz"))) >= 3  # a shard per chunk: a killed run keeps finished ones

    def no_model(self: Embedder, batch: np.ndarray) -> np.ndarray:
        raise AssertionError("the model ran although every embedding is cached")

    monkeypatch.setattr(Embedder, "__call__", no_model)
    second = embed_files(scan(tmp_path / "imgs"), tiny, cache_dir=cache, precision="fp32")
    assert [f.path for f in second.files] == [f.path for f in first.files]
    assert cosine(first.embeddings, second.embeddings).min() > 0.999  # float16 cache
    np.testing.assert_array_equal(first.thumbs, second.thumbs)
    assert second.errors == first.errors  # failures are not cached: they are retried and reported again

    (tmp_path / "imgs" / "a" / "img1.png").rename(tmp_path / "imgs" / "renamed.png")
    third = embed_files(scan(tmp_path / "imgs"), tiny, cache_dir=cache, precision="fp32")
    old = first.embeddings[[f.path for f in first.files].index("a/img1.png")]
    new = third.embeddings[[f.path for f in third.files].index("renamed.png")]
    assert cosine(old, new) > 0.999


def test_killed_run_resumes_from_finished_chunks(tmp_path: Path, tiny: Backbone,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for i, img in enumerate(sample_images(12, seed=2)):
        Image.fromarray(img).save(tmp_path / f"{i:02d}.png")
    files = [f for f in scan(tmp_path) if f.path.endswith(".png")]
    cache = tmp_path / "cache"
    rows_run: list[int] = []
    real_call = Embedder.__call__

    def dies_on_third_batch(self: Embedder, batch: np.ndarray) -> np.ndarray:
        if len(rows_run) == 2:
            raise KeyboardInterrupt
        rows_run.append(len(batch))
        return real_call(self, batch)

    monkeypatch.setattr(Embedder, "__call__", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        embed_files(files, tiny, cache_dir=cache, batch_size=4, chunk=4, workers=1)
    assert rows_run == [4, 4]

    def counting(self: Embedder, batch: np.ndarray) -> np.ndarray:
        rows_run.append(len(batch))
        return real_call(self, batch)

    monkeypatch.setattr(Embedder, "__call__", counting)
    rows_run.clear()
    resumed = embed_files(files, tiny, cache_dir=cache, batch_size=4, chunk=4, workers=1)
    assert sum(rows_run) == 4  # only the images of the unfinished chunk
    fresh = embed_files(files, tiny, batch_size=4, workers=1)
    assert cosine(resumed.embeddings, fresh.embeddings).min() > 0.999


def test_cache_ignores_a_damaged_shard_and_is_per_backbone(tmp_path: Path, tiny: Backbone) -> None:
    make_folder(tmp_path / "imgs", n=3)
    cache = tmp_path / "cache"
    first = embed_files(scan(tmp_path / "imgs"), tiny, cache_dir=cache, precision="fp32")
    shard = next(cache.rglob("part-*.npz"))
    shard.write_bytes(shard.read_bytes()[:100])  # as if the disk filled up mid-write
    again = embed_files(scan(tmp_path / "imgs"), tiny, cache_dir=cache, precision="fp32")
    np.testing.assert_allclose(again.embeddings, first.embeddings, atol=1e-5)  # recomputed, not float16
    other = create_backbone(TINY, pretrained=False, image_size=64)
    embed_files(scan(tmp_path / "imgs"), other, cache_dir=cache, precision="fp32")
    assert len([d for d in cache.iterdir() if d.is_dir()]) == 2  # another size/weights: another cache


def test_empty_input_and_bad_options(tiny: Backbone) -> None:
    result = embed_files([], tiny)
    assert result.embeddings.shape == (0, tiny.dim)
    assert result.thumbs.shape == (0, THUMB_SIZE, THUMB_SIZE, 3)
    with pytest.raises(ValueError, match="precision"):
        embed_files([], tiny, precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        embed_files([], tiny, batch_size=0)


@pytest.mark.slow
def test_bf16_matches_fp32(tmp_path: Path) -> None:
    root = tmp_path / "fashion"
    root.mkdir()
    for i, img in enumerate(sample_images(48, seed=5)):
        Image.fromarray(img).save(root / f"{i:03d}.png")
    files = scan(root)
    backbone = create_backbone(image_size=96)
    fp32 = embed_files(files, backbone, precision="fp32")
    bf16 = embed_files(files, backbone, precision="bf16")
    cos = cosine(fp32.embeddings, bf16.embeddings)
    assert cos.min() >= 0.98, cos.min()
    assert not np.array_equal(fp32.embeddings, bf16.embeddings)  # bf16 really ran at lower precision


def write_tiny_weights(path: Path) -> torch.nn.Module:
    torch.manual_seed(3)
    model = timm.create_model(TINY, pretrained=False).eval()
    torch.save(model.state_dict(), path)
    return model


def test_cli_embed_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_folder(tmp_path / "imgs")
    weights = tmp_path / "tiny.pth"
    write_tiny_weights(weights)
    out = tmp_path / "out"
    code = main(["-q", "embed", str(tmp_path / "imgs"), "--backbone", TINY, "--weights", str(weights),
                 "--image-size", "48", "--out", str(out), "--batch-size", "4", "--precision", "fp32",
                 "--cache", str(tmp_path / "cache")])
    assert code == 0
    emb = np.load(out / "embeddings.npy")
    with (out / "index.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["path"]
    paths = [r[0] for r in rows[1:]]
    assert paths == good
    assert emb.dtype == np.float32 and emb.shape == (len(good), timm.create_model(TINY).num_features)
    backbone = create_backbone(TINY, weights=weights, image_size=48)
    for i in (0, len(paths) - 1):  # row i is the embedding of the file on index line i
        expected = reference_embedding(tmp_path / "imgs" / paths[i], backbone)
        np.testing.assert_allclose(emb[i], expected, atol=1e-4)
    with (out / "errors.csv").open(newline="", encoding="utf-8") as fh:
        errors = list(csv.DictReader(fh))
    assert [e["path"] for e in errors] == ["a/broken.jpg"]
    assert f"embedded {len(good)} images" in capsys.readouterr().out


def test_cli_embed_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(tmp_path / "imgs", n=2)
    out = str(tmp_path / "o")
    assert main(["embed", str(tmp_path / "imgs"), "--backbone", "no_such_net", "--out", out]) == 2
    assert "no_such_net" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["embed", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images found" in capsys.readouterr().err
    weights = tmp_path / "effnet.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), weights)
    assert main(["embed", str(tmp_path / "imgs"), "--backbone", TINY, "--weights", str(weights),
                 "--out", str(tmp_path / "o")]) == 2
    assert "effnet.pth" in capsys.readouterr().err


class ConvFeedsTwo(torch.nn.Module):
    """A conv whose output goes to a BatchNorm and also around it: folding would be wrong here."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.head(self.bn(y) + y)


def randomise_bn(model: torch.nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics, as a trained network has."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def test_fold_batchnorm_keeps_outputs_and_leaves_the_original() -> None:
    from pixlabel.backbones.optimize import fold_batchnorm

    module = create_backbone(TINY, pretrained=False, image_size=48).module.eval()
    randomise_bn(module)
    x = torch.randn(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    before = run_module(module, x)
    folded, n = fold_batchnorm(module, x[:2])
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert n == n_bn > 0  # in a ResNet every BatchNorm follows a conv
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(run_module(folded, x), before, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(run_module(module, x), before)  # the original is untouched

    shared = ConvFeedsTwo().eval()
    randomise_bn(shared)
    same, n = fold_batchnorm(shared, x[:2])
    assert n == 0 and same is shared  # folding was tried, failed the check and was dropped


def run_module(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return module(x)


def test_embedder_bf16_and_fp32_agree_on_a_tiny_model(tiny: Backbone) -> None:
    batch = np.stack([np.asarray(Image.fromarray(a).convert("RGB").resize((48, 48))) for a in sample_images(8)])
    fp32 = Embedder(tiny, precision="fp32")(batch)
    bf16 = Embedder(tiny, precision="bf16")(batch)
    assert fp32.dtype == bf16.dtype == np.float32
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(tiny.mean).view(1, 3, 1, 1)) / torch.tensor(tiny.std).view(1, 3, 1, 1)
    np.testing.assert_allclose(fp32, run_module(tiny.module, x).numpy(), atol=1e-4)
    assert cosine(fp32, bf16).min() > 0.98


def test_embedder_fp32_equals_the_module_for_torchvision() -> None:
    backbone = create_backbone("torchvision/resnet18", pretrained=False, image_size=32)
    randomise_bn(backbone.module)
    batch = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(backbone.mean).view(1, 3, 1, 1)) / torch.tensor(backbone.std).view(1, 3, 1, 1)
    expected = run_module(backbone.module, x).numpy()
    got = Embedder(backbone, precision="fp32")(batch)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_bf16_refused_on_the_probe_falls_back_to_autocast(
    tiny: Backbone, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pixlabel.backbones import optimize

    monkeypatch.setattr(optimize, "BF16_MIN_COSINE", 1.01)  # no bf16 model can pass this
    batch = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    with caplog.at_level("DEBUG", logger="pixlabel.backbones.optimize"):
        fallback = Embedder(tiny, precision="bf16")(batch)
    assert "using autocast" in caplog.text
    fp32 = Embedder(tiny, precision="fp32")(batch)
    assert cosine(fallback, fp32).min() > 0.98
    assert not np.array_equal(fallback, fp32)  # autocast still computed in bf16


def test_embed_files_restores_thread_settings(tmp_path: Path, tiny: Backbone) -> None:
    import sys

    make_folder(tmp_path / "imgs", n=4)
    threads, switch = torch.get_num_threads(), sys.getswitchinterval()
    embed_files(scan(tmp_path / "imgs"), tiny, batch_size=2)  # several batches: the streams really run
    assert (torch.get_num_threads(), sys.getswitchinterval()) == (threads, switch)
    with ThreadPoolExecutor(1) as pool:  # a new thread starts from torch's process-wide default
        assert pool.submit(torch.get_num_threads).result() == threads
