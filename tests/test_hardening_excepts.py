"""A bug in pixlabel surfaces; only a file that cannot be decoded becomes an "unreadable image" row
(ingest, embedding, the GAN's data loader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.io.images import ImageFile, content_hash


def _bug(*args: object, **kwargs: object) -> Image.Image:
    raise AttributeError("'NoneType' object has no attribute 'mode'")  # what a real slip in our code raises


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for k in range(2):
        (tmp_path / "cat").mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(tmp_path / "cat" / f"{k}.png")
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return tmp_path


def test_ingest_lists_broken_files_but_a_bug_is_raised(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixlabel.io import ingest as ingest_module

    result = ingest_module.ingest(folder)
    assert [p for p, _ in result.errors] == ["cat/broken.png"] and len(result.images) == 2
    monkeypatch.setattr(ingest_module, "load_rgb", _bug)
    with pytest.raises(AttributeError, match="no attribute 'mode'"):
        ingest_module.ingest(folder)


def test_embedding_decode_reports_broken_files_but_a_bug_is_raised(folder: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pixlabel.backbones import embed

    def image_file(rel: str) -> ImageFile:
        path = folder / rel
        return ImageFile(rel, path, path.stat().st_size, content_hash(path))

    assert isinstance(embed.decode_for_model(image_file("cat/broken.png"), 16), str)
    ok = embed.decode_for_model(image_file("cat/0.png"), 16)
    assert not isinstance(ok, str) and ok[0].shape == (16, 16, 3)
    monkeypatch.setattr(embed, "load_rgb", _bug)
    with pytest.raises(AttributeError):
        embed.decode_for_model(image_file("cat/0.png"), 16)


def test_gan_data_reports_broken_files_but_a_bug_is_raised(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixlabel.generate import data

    loaded = data.load_labeled(folder, None, image_size=16)
    assert [p for p, _ in loaded.errors] == ["cat/broken.png"] and len(loaded.paths) == 2
    monkeypatch.setattr(data, "load_rgb", _bug)
    with pytest.raises(AttributeError):
        data.load_labeled(folder, None, image_size=16)
