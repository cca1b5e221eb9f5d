"""Property-based fuzzing of image decoding: mutated bytes of real photos (scikit-image's astronaut, cat, coffee)
encoded as PNG (RGB, palette, RGBA, 16-bit), JPEG (baseline, progressive, EXIF-rotated), GIF (animated), TIFF
(raw, LZW, 2 pages, 16-bit) and WebP (lossy, lossless). ``load_rgb`` and the model server's ``probe`` /
``decode_for_model`` may only raise ImageDecodeError; no hang (5 s deadline per example) and memory stays bounded
(the pixel limit holds whatever the header claims).

Examples per property: tests/fuzzing.py (200 in CI; bench/fuzz.py runs thousands).
"""

from __future__ import annotations

import io
import resource
import struct
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from fuzzing import FUZZ, only, tried
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.serve.decode import decode_for_model, probe

MAX_PIXELS = 4_000_000  # what a mutated header may claim and still be decoded: ~16 MB RGBA at most
SERVE_SIZE = (24, 24)


@cache
def seeds() -> dict[str, bytes]:
    """Real photographs, small (decoding a fuzzed 512 px photo thousands of times would take minutes)."""
    from skimage import data

    photos = [Image.fromarray(f()).resize((48, 40)) for f in (data.astronaut, data.chelsea, data.coffee)]
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        out[name] = buf.getvalue()

    a, b, c = photos
    save("png-rgb", a, "PNG")
    save("png-palette", b.quantize(32), "PNG")
    rgba = c.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * 5, (40, 1))))
    save("png-rgba", rgba, "PNG")
    save("png-16bit", Image.fromarray(np.asarray(a.convert("L"), np.uint16) * 257), "PNG")
    save("jpeg", a, "JPEG", quality=80)
    save("jpeg-progressive", b, "JPEG", quality=70, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the decoder transposes it
    save("jpeg-exif", c, "JPEG", exif=exif)
    save("gif-animated", a.quantize(16), "GIF", save_all=True, append_images=[b.quantize(16)], duration=50)
    save("tiff-raw", b, "TIFF")
    save("tiff-lzw", c, "TIFF", compression="tiff_lzw")
    save("tiff-pages", a, "TIFF", save_all=True, append_images=[b])
    save("tiff-16bit", Image.fromarray(np.asarray(c.convert("L"), np.uint16) * 200), "TIFF")
    save("webp-lossy", a, "WEBP", quality=60)
    save("webp-lossless", rgba, "WEBP", lossless=True)
    return out


EXTREMES = [0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000, 13_000]


def mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, pos, value, piece in ops:
        i = pos % (len(buf) + 1)
        if op == 0 and buf:  # flip bits of one byte
            buf[min(i, len(buf) - 1)] ^= value & 0xFF or 1
        elif op == 1:  # insert bytes
            buf[i:i] = piece
        elif op == 2:  # delete a run
            del buf[i:i + 1 + value % 64]
        elif op == 3:  # an extreme 16/32-bit number where sizes and offsets live (both byte orders)
            number = EXTREMES[value % len(EXTREMES)]
            fmt = (">I", "<I", ">H", "<H")[value % 4]
            packed = struct.pack(fmt, number & (0xFFFFFFFF if "I" in fmt else 0xFFFF))
            buf[i:i + len(packed)] = packed
        elif op == 4:  # duplicate a chunk (repeated headers, chunks, IFDs)
            buf[i:i] = buf[i:i + 1 + value % 256]
        else:  # truncate
            del buf[i:]
    return bytes(buf)


ops = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**6), st.integers(0, 2**16),
                         st.binary(min_size=1, max_size=8)), min_size=1, max_size=6)
names = st.sampled_from(sorted(seeds()))


def test_the_seeds_decode_and_cover_every_format() -> None:
    formats = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in seeds().items():
            path = Path(tmp) / "x"
            path.write_bytes(data)
            assert load_rgb(path).mode == "RGB", name
            formats.add(Image.open(io.BytesIO(data)).format)
    assert formats == {"PNG", "JPEG", "GIF", "TIFF", "WEBP"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "image"


def _rss_mb() -> float:
    """Resident memory now (not the process peak: earlier tests in the same run set that)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


_RSS = {"start": 0.0, "max": 0.0}  # start: when this module's tests begin; max: sampled after every example


@pytest.fixture(scope="module", autouse=True)
def _rss_at_start() -> None:
    """Not at import: collection imports every test module before any test runs, so earlier tests' memory
    would count as fuzzing's."""
    _RSS["start"] = _rss_mb()


def _sample_rss() -> None:
    _RSS["max"] = max(_RSS["max"], _rss_mb())


@FUZZ
@given(name=names, edits=ops, draft=st.booleans())
def test_fuzz_load_rgb(scratch: Path, name: str, edits: list[tuple[int, int, int, bytes]], draft: bool) -> None:
    scratch.write_bytes(mutate(seeds()[name], edits))
    with tried("load_rgb"):
        only((ImageDecodeError,), lambda: load_rgb(scratch, max_pixels=MAX_PIXELS,
                                                   draft=(16, 16) if draft else None))
    _sample_rss()


@FUZZ
@given(name=names, edits=ops)
def test_fuzz_serve_decode(name: str, edits: list[tuple[int, int, int, bytes]]) -> None:
    data = mutate(seeds()[name], edits)
    with tried("serve_decode"):
        only((ImageDecodeError,), lambda: probe(data, max_pixels=MAX_PIXELS, size=SERVE_SIZE))
        only((ImageDecodeError,), lambda: decode_for_model(data, max_pixels=MAX_PIXELS, size=SERVE_SIZE, mode="RGB"))
    _sample_rss()


def test_memory_stayed_bounded() -> None:
    """Runs after the fuzzing above (file order): no mutated file made the process hold more than the pixel limit
    allows (resident memory sampled after every example, against what it held before the first)."""
    assert _RSS["max"] > 0, "the fuzz tests above did not run"
    grew = _RSS["max"] - _RSS["start"]
    assert grew < 1024, f"resident memory grew by {grew:.0f} MB while decoding fuzzed files"
