"""Image discovery and decoding on hostile folders generated in tmp_path."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from pixlabel.errors import InputError
from pixlabel.io.images import (
    ImageDecodeError,
    content_hash,
    load_rgb,
    scan_images,
    walk_images,
)
from pixlabel.io.ingest import ingest, write_errors_csv

RNG = np.random.default_rng(7)


def noise(w: int = 32, h: int = 24) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))


def save(img: Image.Image, path: Path, fmt: str | None = None, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def png_claiming_size(path: Path, w: int, h: int) -> Path:
    """A ~70-byte PNG whose header says ``w``x``h``: decoding it would need the full size, reading it not."""
    data = bytearray(encoded(Image.new("1", (1, 1)), "PNG"))
    struct.pack_into(">II", data, 16, w, h)  # IHDR data starts after signature(8) + length(4) + type(4)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def reason_of(path: Path, **kw: object) -> str:
    with pytest.raises(ImageDecodeError) as info:
        load_rgb(path, **kw)  # type: ignore[arg-type]
    return info.value.reason


# ---------------------------------------------------------------- walking


def test_walk_is_sorted_recursive_and_skips_hidden_nonimage_and_specials(tmp_path: Path) -> None:
    save(noise(), tmp_path / "b" / "z.png")
    save(noise(), tmp_path / "b" / "a.JPG", "JPEG")  # extension case does not matter
    save(noise(), tmp_path / "a.tiff")
    save(noise(), tmp_path / ".hidden.png")
    save(noise(), tmp_path / ".cache" / "in_hidden_dir.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "broken.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(tmp_path / "pipe.jpg")  # opening a FIFO would block forever
    files = list(walk_images(tmp_path))
    assert [f.path for f in files] == ["a.tiff", "b/a.JPG", "b/z.png"]
    first = files[1]
    assert first.abs_path == tmp_path / "b" / "a.JPG"
    assert first.size_bytes == (tmp_path / "b" / "a.JPG").stat().st_size
    expected = hashlib.blake2b((tmp_path / "b" / "a.JPG").read_bytes(), digest_size=16).hexdigest()
    assert first.content_hash == expected


def test_symlink_loop_terminates_and_each_real_dir_is_visited_once(tmp_path: Path) -> None:
    save(noise(), tmp_path / "a" / "cat.png")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a/loop -> root: a cycle
    (tmp_path / "b").symlink_to(tmp_path / "a")  # a second name for a/
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    save(noise(), outside / "dog.png")
    (tmp_path / "c").symlink_to(outside)  # followed: it is not visited through any other name
    assert [f.path for f in walk_images(tmp_path)] == ["a/cat.png", "c/dog.png"]


def test_non_utf8_file_name_is_reported_not_dropped(tmp_path: Path) -> None:
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    with open(bad, "wb") as fh:
        fh.write(encoded(noise(), "PNG"))
    save(noise(), tmp_path / "ok.png")
    found, problems = scan_images(tmp_path)
    assert [f.path for f in found] == ["ok.png"]
    assert problems == [("caf\\xe9.png", "file name is not valid UTF-8; rename the file")]


@pytest.mark.parametrize("make", ["missing", "file"])
def test_bad_root_is_an_input_error_naming_it(tmp_path: Path, make: str) -> None:
    root = tmp_path / "photos"
    if make == "file":
        root.write_text("x")
    with pytest.raises(InputError, match="photos"):
        list(walk_images(root))


def test_content_hash_streams_multi_chunk_files(tmp_path: Path) -> None:
    data = RNG.integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()  # spans three 1 MiB chunks
    (tmp_path / "big.bin").write_bytes(data)
    assert content_hash(tmp_path / "big.bin") == hashlib.blake2b(data, digest_size=16).hexdigest()
    (tmp_path / "other.bin").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert content_hash(tmp_path / "other.bin") != content_hash(tmp_path / "big.bin")


# ---------------------------------------------------------------- decoding: unusable files


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.jpg").write_bytes(b"")
    assert reason_of(tmp_path / "e.jpg") == "empty file (0 bytes)"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    data = encoded(noise(64, 64), fmt)
    (tmp_path / "t.img").write_bytes(data[: len(data) // 2])
    assert reason_of(tmp_path / "t.img").startswith("truncated image data")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # never switched on behind the caller's back


def test_text_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_text("hello, I am not a JPEG\n")
    assert reason_of(tmp_path / "fake.jpg") == "not an image (cannot identify format)"


def test_missing_file_is_a_decode_error(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "gone.png").startswith("cannot read file")


@pytest.mark.parametrize(("w", "h"), [(9000, 9000), (20000, 20000)])  # below / above Pillow's own refusal
def test_decompression_bomb_refused_from_header(tmp_path: Path, w: int, h: int) -> None:
    bomb = png_claiming_size(tmp_path / "bomb.png", w, h)
    assert bomb.stat().st_size < 200
    pillow_limit = Image.MAX_IMAGE_PIXELS
    reason = reason_of(bomb, max_pixels=1_000_000)
    expected_pixels = f"{w * h:.1e}".replace("e+0", "e")
    assert reason == (
        f"decompression bomb: {expected_pixels} pixels exceeds the limit of 1.0e6 (raise --max-pixels)"
    )
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # a low per-call limit leaves Pillow's guard alone


def test_max_pixels_is_per_call(tmp_path: Path) -> None:
    bomb = png_claiming_size(tmp_path / "bomb.png", 2000, 2000)
    assert reason_of(bomb, max_pixels=3_999_999).startswith("decompression bomb")
    # Allowed through, the lying header meets a 1-pixel stream: now it is decoded and found short.
    assert not reason_of(bomb, max_pixels=4_000_000).startswith("decompression bomb")


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    path = save(noise(), tmp_path / "a.png")
    with pytest.raises(ValueError, match="max_pixels"):
        load_rgb(path, max_pixels=0)
    with pytest.raises(ValueError, match="draft"):
        load_rgb(path, draft=(0, 10))


# ---------------------------------------------------------------- decoding: formats and modes


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"),
                                          ("TIFF", "tif"), ("GIF", "gif")])
def test_formats_decode_to_rgb(tmp_path: Path, fmt: str, ext: str) -> None:
    src = noise(40, 30)
    out = load_rgb(save(src, tmp_path / f"x.{ext}", fmt))
    assert (out.mode, out.size) == ("RGB", (40, 30))
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless: every pixel survives
        assert np.array_equal(np.asarray(out), np.asarray(src))


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = np.asarray(load_rgb(path))
    assert out.shape == (16, 16, 3)
    assert tuple(out[8, 8]) == (255, 0, 0)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (80, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_rgb(save(stored, tmp_path / "r.jpg", "JPEG", exif=exif, quality=95))
    assert out.size == (40, 80)
    arr = np.asarray(out).astype(int)
    assert arr[5, 35, 0] > 200 and arr[5, 35, 2] < 60  # red block is now top-right
    assert arr[5, 5, 2] > 200  # top-left is blue


def test_jpeg_draft_decodes_small_but_not_smaller_than_asked(tmp_path: Path) -> None:
    path = save(noise(800, 600), tmp_path / "big.jpg", "JPEG")
    out = load_rgb(path, draft=(100, 100))
    assert out.width >= 100 and out.height >= 100
    assert out.width < 800
    assert load_rgb(path).size == (800, 600)


def test_jpeg_draft_respects_exif_rotation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(noise(800, 400), tmp_path / "side.jpg", "JPEG", exif=exif)
    # Displayed 400x800; asked for at least 100x200 -> stored 200x100 is the smallest scale that fits.
    assert load_rgb(path, draft=(100, 200)).size == (100, 200)


def _solid(mode: str, size: tuple[int, int], value: object) -> Image.Image:
    return Image.new(mode, size, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "value", "fmt", "expected"),
    [
        ("1", 1, "PNG", (255, 255, 255)),
        ("L", 100, "PNG", (100, 100, 100)),
        ("LA", (0, 0), "PNG", (255, 255, 255)),  # fully transparent black -> white background
        ("LA", (40, 255), "PNG", (40, 40, 40)),
        ("RGBA", (200, 0, 0, 255), "PNG", (200, 0, 0)),
        ("RGBA", (0, 0, 0, 0), "PNG", (255, 255, 255)),
        ("CMYK", (0, 0, 0, 0), "TIFF", (255, 255, 255)),
        ("CMYK", (255, 0, 0, 0), "TIFF", (0, 255, 255)),
        ("YCbCr", (76, 85, 255), "TIFF", (254, 0, 0)),
    ],
)
def test_modes_convert_sensibly(tmp_path: Path, mode: str, value: object, fmt: str, expected: tuple) -> None:
    path = save(_solid(mode, (8, 6), value), tmp_path / f"m.{fmt.lower()}", fmt)
    with Image.open(path) as check:
        assert check.mode == mode  # the file really carries the mode under test
    out = np.asarray(load_rgb(path)).astype(int)
    assert out.shape == (6, 8, 3)
    assert np.abs(out[3, 3] - np.array(expected)).max() <= 1


def test_half_transparent_rgba_blends_with_white(tmp_path: Path) -> None:
    out = np.asarray(load_rgb(save(_solid("RGBA", (4, 4), (0, 0, 0, 128)), tmp_path / "h.png")))
    assert np.all(np.abs(out.astype(int) - 127) <= 1)


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (4, 2), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(1, (2, 0, 4, 2))  # right half: palette index 1 = red
    im.info["transparency"] = 0  # left half: index 0, transparent
    path = save(im, tmp_path / "p.png")
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    out = np.asarray(load_rgb(path))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 3]) == (255, 0, 0)


def test_16bit_is_stretched_by_its_own_range_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 4000, 64), (8, 1)).astype(np.uint16)  # each row 0..4000
    path = save(Image.fromarray(ramp), tmp_path / "deep.png")
    with Image.open(path) as check:
        assert check.mode == "I;16"
    out = np.asarray(load_rgb(path))
    assert out.dtype == np.uint8 and out.shape == (8, 64, 3)
    assert out.max() == 255 and out.min() == 0
    assert 120 <= out[4, 32, 0] <= 135  # ~2000 of 4000 lands mid-grey, not white
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)  # order of intensities is kept


def test_32bit_int_and_float_are_stretched(tmp_path: Path) -> None:
    ints = np.arange(-500, 1500, 40, dtype=np.int32).reshape(5, 10)
    floats = np.linspace(-1.5, 2.5, 50, dtype=np.float32).reshape(5, 10)
    for name, arr, mode in [("i.tif", ints, "I"), ("f.tif", floats, "F")]:
        path = save(Image.fromarray(arr), tmp_path / name)
        with Image.open(path) as check:
            assert check.mode == mode
        out = np.asarray(load_rgb(path))
        assert (out.min(), out.max()) == (0, 255)
        assert np.all(np.diff(out[..., 0].ravel().astype(int)) >= 0)


def test_constant_high_depth_image_does_not_divide_by_zero(tmp_path: Path) -> None:
    path = save(Image.fromarray(np.full((4, 4), 3000, dtype=np.uint16)), tmp_path / "flat.png")
    out = np.asarray(load_rgb(path))
    assert out.shape == (4, 4, 3) and len(np.unique(out)) == 1


# ---------------------------------------------------------------- ingest over a hostile folder


def build_hostile_folder(root: Path) -> tuple[list[str], dict[str, str]]:
    """Write good and bad files; return the good paths and, per bad path, the start of its reason."""
    good = {
        "a/photo.jpg": ("JPEG", noise()),
        "a/scan.tiff": ("TIFF", noise()),
        "b/anim.gif": ("GIF", noise()),
        "b/pic.webp": ("WEBP", noise()),
        "c/old.BMP": ("BMP", noise()),
        "c/alpha.png": ("PNG", _solid("RGBA", (8, 8), (1, 2, 3, 50))),
    }
    for rel, (fmt, img) in good.items():
        save(img, root / rel, fmt)
    jpeg, png = encoded(noise(64, 64), "JPEG"), encoded(noise(64, 64), "PNG")
    (root / "bad").mkdir()
    (root / "bad" / "empty.png").write_bytes(b"")
    (root / "bad" / "half.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "bad" / "half.png").write_bytes(png[: len(png) // 2])
    (root / "bad" / "text.jpg").write_text("just words")
    png_claiming_size(root / "bad" / "bomb.png", 20000, 20000)
    save(noise(), root / ".hidden.jpg")
    (root / "readme.txt").write_text("skip me")
    (root / "a" / "up").symlink_to(root)
    bad = {
        "bad/bomb.png": "decompression bomb",
        "bad/empty.png": "empty file (0 bytes)",
        "bad/half.jpg": "truncated image data",
        "bad/half.png": "truncated image data",
        "bad/text.jpg": "not an image (cannot identify format)",
    }
    return sorted(good), bad


def test_ingest_keeps_good_files_and_lists_each_bad_one(tmp_path: Path) -> None:
    good, bad = build_hostile_folder(tmp_path / "imgs")
    result = ingest(tmp_path / "imgs", max_pixels=10_000_000, workers=2)
    assert [f.path for f in result.images] == good
    assert [p for p, _ in result.errors] == sorted(bad)
    for path, reason in result.errors:
        assert reason.startswith(bad[path]), (path, reason)
    again = ingest(tmp_path / "imgs", max_pixels=10_000_000, workers=1)
    assert again == result  # same order and hashes, whatever the thread count


def test_ingest_without_decode_only_hashes(tmp_path: Path) -> None:
    good, bad = build_hostile_folder(tmp_path / "imgs")
    result = ingest(tmp_path / "imgs", decode=False)
    assert [f.path for f in result.images] == sorted(good + list(bad))
    assert result.errors == []


def test_ingest_lets_an_unexpected_error_surface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: load_rgb maps every decoder failure to ImageDecodeError (tests/test_fuzz_images.py), so anything
    else is a bug and must stop the run instead of becoming an "unreadable image" row."""
    save(noise(), tmp_path / "a.png")
    save(noise(), tmp_path / "b.png")

    def flaky(path: Path, **kw: object) -> Image.Image:
        if Path(path).name == "a.png":
            raise RuntimeError("decoder bug")
        return Image.new("RGB", (1, 1))

    monkeypatch.setattr("pixlabel.io.ingest.load_rgb", flaky)
    with pytest.raises(RuntimeError, match="decoder bug"):
        ingest(tmp_path)


def test_ingest_rejects_bad_workers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        ingest(tmp_path, workers=0)


def test_write_errors_csv_contract(tmp_path: Path) -> None:
    out = tmp_path / "ws" / "errors.csv"
    write_errors_csv([("dir/ünï, cøde.jpg", 'truncated "x"\nline')], out)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["path", "reason"], ["dir/ünï, cøde.jpg", 'truncated "x"\nline']]
