"""Zero-shot labels: open_clip loading (tiny local checkpoint), prompt ensembles, scoring, prompt files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from pixlabel.backbones.open_clip_models import OpenClipModel, load_open_clip
from pixlabel.errors import InputError, PixlabelError
from pixlabel.labelers.protocol import Labeler, Pool
from pixlabel.labelers.zero_shot import (
    DEFAULT_TEMPLATES,
    ZeroShotLabeler,
    class_prompts,
    read_prompts_yaml,
)

ARCH = "pixlabel-test-tiny-clip"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _register(tmp: Path, name: str, cfg: dict) -> None:
    path = tmp / f"{name}.json"  # open_clip names a config after its file stem
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)


def _save_random(arch: str, path: Path, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = open_clip.create_model(arch)  # random weights: no `pretrained`
    torch.save(model.state_dict(), path)
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    tmp = tmp_path_factory.mktemp("clip")
    _register(tmp, ARCH, TINY_CFG)
    ckpt = tmp / "ckpt.pt"
    return ckpt, _save_random(ARCH, ckpt, seed=0)


@pytest.fixture(scope="module")
def clip(tiny: tuple[Path, torch.nn.Module]) -> OpenClipModel:
    return load_open_clip(ARCH, pretrained=str(tiny[0]))


def _images(n: int, h: int = 40, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _ref_text(model: torch.nn.Module, texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        out = model.encode_text(open_clip.tokenize(texts))
    return (out / out.norm(dim=-1, keepdim=True)).numpy()


def _ref_image(model: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    """Reference preprocessing written out by hand: bicubic resize to 32x32 (square inputs need no crop),
    scale to [0, 1], normalise with the OpenAI CLIP mean/std that the tiny config defaults to."""
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    x = np.stack([np.asarray(Image.fromarray(p).resize((32, 32), Image.Resampling.BICUBIC)) for p in pixels])
    x = ((x / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    with torch.inference_mode():
        out = model.encode_image(torch.tensor(x, dtype=torch.float32))
    return (out / out.norm(dim=-1, keepdim=True)).numpy()


# ---- loading --------------------------------------------------------------------------------------------


def test_local_checkpoint_gives_the_saved_models_outputs(clip: OpenClipModel, tiny: tuple) -> None:
    ckpt, reference = tiny
    texts = ["a photo of a cat.", "a photo of a dog."]
    images = _images(3)
    assert np.allclose(clip.encode_texts(texts), _ref_text(reference, texts), atol=1e-5)
    assert np.allclose(clip.encode_images(images), _ref_image(reference, images), atol=1e-4)
    # the check can fail: other weights give other embeddings
    other = _save_random(ARCH, ckpt.parent / "other.pt", seed=1)
    assert not np.allclose(_ref_text(other, texts), clip.encode_texts(texts), atol=1e-3)
    assert clip.image_size == (32, 32) and clip.dim == 32


def test_encode_shapes_unit_norm_and_batching(clip: OpenClipModel) -> None:
    images = _images(5, h=48, w=64)  # not square: open_clip resizes the short side, then centre-crops
    emb = clip.encode_images(images)
    assert emb.shape == (5, 32) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert np.allclose(clip.encode_images(images, batch_size=2), emb, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])
    txt = clip.encode_texts(["a", "b", "c"], batch_size=2)
    assert txt.shape == (3, 32) and np.allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-5)
    assert clip.encode_images(np.zeros((0, 40, 40, 3), np.uint8)).shape == (0, 32)
    with pytest.raises(ValueError, match="uint8"):
        clip.encode_images(images.astype(np.float32))
    with pytest.raises(ValueError, match="non-empty strings"):
        clip.encode_texts("a photo")  # a bare string would be encoded letter by letter


def test_tokenizer_is_the_bundled_clip_bpe(clip: OpenClipModel) -> None:
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    assert isinstance(clip.tokenizer, SimpleTokenizer)
    assert Path(default_bpe()).is_file()  # ships in the wheel: no download needed offline
    assert Path(default_bpe()).is_relative_to(Path(open_clip.__file__).parent)


def test_as_backbone_matches_encode_images(clip: OpenClipModel) -> None:
    backbone = clip.as_backbone()
    assert backbone.image_size == 32 and backbone.name == f"open_clip/{ARCH}"
    images = _images(2, h=32, w=32)
    x = (torch.tensor(images / 255.0) - torch.tensor(backbone.mean)) / torch.tensor(backbone.std)
    with torch.inference_mode():
        out = backbone.module(x.permute(0, 3, 1, 2).float()).numpy()
    assert np.allclose(out, clip.encode_images(images), atol=1e-4)


def test_missing_checkpoint_and_unknown_arch(tmp_path: Path, tiny: tuple) -> None:
    with pytest.raises(PixlabelError, match="no such checkpoint file"):
        load_open_clip(ARCH, pretrained=str(tmp_path / "nope.pt"))
    with pytest.raises(PixlabelError, match="Did you mean: ViT-B-32"):
        load_open_clip("ViT-B-33", pretrained=str(tiny[0]))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PixlabelError, match="cannot load it as an open_clip"):
        load_open_clip(ARCH, pretrained=str(bad))


def test_checkpoint_of_another_architecture(tmp_path: Path, tiny: tuple) -> None:
    wider = {**TINY_CFG, "embed_dim": 48}
    _register(tmp_path, ARCH + "-wide", wider)
    with pytest.raises(PixlabelError, match="checkpoint of this architecture"):
        load_open_clip(ARCH + "-wide", pretrained=str(tiny[0]))


def test_simulated_hub_failure_says_to_pass_a_local_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", no_network)
    with pytest.raises(PixlabelError, match="local checkpoint path") as err:
        load_open_clip("ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert "Name or service not known" in str(err.value)


def test_real_hub_download_fails_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """open_clip's own download path, with the hub client in offline mode and an empty cache (no retries)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PixlabelError, match="local checkpoint path"):
        load_open_clip("ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=tmp_path)


# ---- prompts --------------------------------------------------------------------------------------------


def test_class_prompts_templates_aliases_and_extra() -> None:
    prompts = class_prompts(
        ["golden_retriever", "cat"], templates=["a photo of a {}.", "art of a {}."],
        aliases={"cat": ["kitty", "cat"]}, extra={"cat": ["a cat asleep on a sofa."]},
    )
    assert list(prompts) == ["golden_retriever", "cat"]
    assert prompts["golden_retriever"] == ["a photo of a golden retriever.", "art of a golden retriever."]
    assert prompts["cat"] == [
        "a photo of a cat.", "art of a cat.", "a photo of a kitty.", "art of a kitty.", "a cat asleep on a sofa."
    ]
    default = class_prompts(["dog"])
    assert default["dog"] == [t.replace("{}", "dog") for t in DEFAULT_TEMPLATES]
    only_extra = class_prompts(["dog"], templates=(), extra={"dog": ["a dog."]})
    assert only_extra == {"dog": ["a dog."]}


def test_class_prompts_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="unknown class 'cta'; known: cat, dog"):
        class_prompts(["cat", "dog"], aliases={"cta": ["kitty"]})
    with pytest.raises(InputError, match="exactly one"):
        class_prompts(["cat"], templates=["a photo."])
    with pytest.raises(InputError, match="duplicate class names: cat"):
        class_prompts(["cat", "cat"])
    with pytest.raises(InputError, match="no prompts"):
        class_prompts(["cat"], templates=())


class FakeEncoder:
    """Text 'embeddings' looked up in a table, to build cases whose answer is known."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table
        self.calls = 0

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.table[t] for t in texts])


def test_scoring_picks_the_class_whose_text_matches_the_image() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0][:4]  # (4, 16) orthonormal directions
    prompts = {"cat": ["cat 1", "cat 2"], "dog": ["dog"], "car": ["car"]}
    encoder = FakeEncoder({"cat 1": basis[0], "cat 2": basis[1], "dog": basis[2], "car": basis[3]})
    labeler = ZeroShotLabeler(encoder, prompts)
    cat_mean = (basis[0] + basis[1]) / np.sqrt(2)  # the averaged, re-normalised cat embedding
    assert np.allclose(labeler.class_embeddings()[0], cat_mean)
    images = np.stack([cat_mean, basis[2], basis[3], basis[2] + basis[3] * 0.5]) * 7.0  # scale must not matter
    images += rng.normal(scale=0.05, size=images.shape)
    probs = labeler.predict_proba(images)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1)
    assert probs.argmax(axis=1).tolist() == [0, 1, 2, 1]
    assert encoder.calls == 1  # one encoder call for all prompts, then cached


def test_probabilities_follow_softmax_of_scaled_cosine() -> None:
    e = np.eye(2)
    image = np.array([[np.cos(0.3), np.sin(0.3)]])  # cosines: cos 0.3 to class a, sin 0.3 to class b
    expected_a = 1 / (1 + np.exp(-10.0 * (np.cos(0.3) - np.sin(0.3))))
    hot = ZeroShotLabeler(FakeEncoder({"a": e[0], "b": e[1]}), {"a": ["a"], "b": ["b"]}, temperature=10.0)
    assert np.allclose(hot.predict_proba(image)[0], [expected_a, 1 - expected_a])
    cold = ZeroShotLabeler(FakeEncoder({"a": e[0], "b": e[1]}), {"a": ["a"], "b": ["b"]}, temperature=1.0)
    assert 0.5 < cold.predict_proba(image)[0, 0] < expected_a  # lower temperature: flatter
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        hot.predict_proba(np.ones((3, 5)))
    with pytest.raises(InputError, match="temperature"):
        ZeroShotLabeler(FakeEncoder({}), {"a": ["a"]}, temperature=0)


def test_zero_shot_on_the_real_model_matches_open_clip_by_hand(clip: OpenClipModel, tiny: tuple) -> None:
    reference = tiny[1]
    prompts = class_prompts(["cat", "dog", "sports_car"], templates=["a photo of a {}.", "a sketch of a {}."])
    labeler = ZeroShotLabeler(clip, prompts, temperature=50.0)
    images = _images(4)
    probs = labeler.predict_proba(clip.encode_images(images))
    class_emb = np.stack([_ref_text(reference, ps).mean(axis=0) for ps in prompts.values()])
    class_emb /= np.linalg.norm(class_emb, axis=1, keepdims=True)
    logits = 50.0 * _ref_image(reference, images) @ class_emb.T
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(probs, expected, atol=1e-4)


def test_labeler_protocol_fit(clip: OpenClipModel) -> None:
    labeler = ZeroShotLabeler(clip, class_prompts(["cat", "dog"]))
    pool = Pool(embeddings=clip.encode_images(_images(3)))
    fitted = labeler.fit(pool, np.array([], int), np.array([], int), n_classes=2)
    assert fitted is labeler and labeler.probs_.shape == (3, 2)
    assert isinstance(labeler, Labeler)  # the runtime check needs ``probs_``, which exists only after fit
    with pytest.raises(ValueError, match="3 classes but prompts for 2"):
        labeler.fit(pool, np.array([], int), np.array([], int), n_classes=3)


# ---- prompts file ---------------------------------------------------------------------------------------


def test_read_prompts_yaml(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text("cat:\n  - a photo of a cat.\n  - a tabby cat asleep.\ndog: a photo of a dog.\n")
    assert read_prompts_yaml(path) == {
        "cat": ["a photo of a cat.", "a tabby cat asleep."], "dog": ["a photo of a dog."]
    }
    prompts = class_prompts(["cat", "dog"], templates=(), extra=read_prompts_yaml(path, classes=["cat", "dog"]))
    assert prompts["dog"] == ["a photo of a dog."]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- cat\n- dog\n", "expected a mapping of class name"),
        ("cat: 3\n", "key 'cat': expected a non-empty list"),
        ("cat: []\n", "key 'cat': expected a non-empty list"),
        ("cat: [a cat., 7]\n", "key 'cat': expected a non-empty list"),
        ("1: [a one.]\n", "key 1 is not a class name"),
        ("cat: [a.]\ncat: [b.]\n", "duplicate key 'cat'"),
        ("cat: [a photo\n", "not valid YAML"),
        ("", "expected a mapping"),
    ],
)
def test_read_prompts_yaml_rejects_bad_structure(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_prompts_yaml(path)
    assert str(path) in str(err.value)


def test_read_prompts_yaml_unknown_class_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text("cta: [a photo of a cat.]\n")
    with pytest.raises(InputError, match="key 'cta': unknown class; known: cat, dog"):
        read_prompts_yaml(path, classes=["cat", "dog"])
    with pytest.raises(InputError, match="cannot read"):
        read_prompts_yaml(tmp_path / "missing.yaml")


@pytest.mark.slow
def test_label_cli_zero_shot_covers_a_class_without_seeds(tiny: tuple, tmp_path: Path, capsys) -> None:
    """`pixlabel label --zero-shot --classes …`: a declared class with no seed is still a label candidate."""
    import csv

    from PIL import Image

    from pixlabel.cli.main import main

    ckpt, _ = tiny
    rng = np.random.default_rng(0)
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(images / f"{i:02d}.png")
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\n" + "".join(f"{i:02d}.png,{'cat' if i % 2 else 'dog'}\n" for i in range(8)))
    common = ["label", str(images), "--labels", str(seeds), "--classes", "cat,dog,bird", "--image-size", "32",
              "--method", "probe"]
    assert main([*common, "--out", str(tmp_path / "no")]) == 2
    assert "no seed labels for class(es) bird" in capsys.readouterr().err
    ws = tmp_path / "ws"
    assert main(["-q", *common, "--out", str(ws), "--zero-shot", "--clip-arch", ARCH,
                 "--clip-pretrained", str(ckpt)]) == 0
    with (ws / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40 and {r["label"] for r in rows} <= {"cat", "dog", "bird"}
    assert all(r["labeler"] == "zero-shot" for r in rows if r["source"] == "model")
