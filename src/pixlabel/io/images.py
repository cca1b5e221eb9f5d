"""Find image files under a folder and decode any of them to RGB without letting one bad file hurt.

Image identity is the relative POSIX path plus the content hash, so a moved folder keeps its labels and an
edited file is noticed.

>>> files = list(walk_images("photos"))  # doctest: +SKIP
>>> load_rgb(files[0].abs_path, draft=(256, 256)).mode  # doctest: +SKIP
'RGB'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from pixlabel.errors import InputError, PixlabelError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)  # compared lower-cased

# Pillow refuses outright above twice its MAX_IMAGE_PIXELS (89.5 Mpx); we make that refusal the default.
DEFAULT_MAX_PIXELS = 178_956_970

_CHUNK = 1 << 20  # 1 MiB: streams big files through the hash without holding them in memory
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_DIRECT_MODES = frozenset({"1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"})
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
# What Pillow and its plugins raise on malformed data (its fuzzing finds all of these).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class ImageFile:
    """One image file found under a root folder.

    >>> ImageFile("a/cat.jpg", Path("/data/a/cat.jpg"), 1234, "9f86d0…").path
    'a/cat.jpg'
    """

    path: str  # POSIX, relative to the root
    abs_path: Path
    size_bytes: int
    content_hash: str


@dataclass(frozen=True)
class FoundFile:
    """A candidate image found by :func:`scan_images` before it is read: relative path, location, size."""

    path: str
    abs_path: Path
    size_bytes: int


class ImageDecodeError(PixlabelError):
    """An image file cannot be turned into pixels; ``reason`` says why in words a user can act on.

    >>> str(ImageDecodeError("empty file (0 bytes)", path="a.jpg"))
    'a.jpg: empty file (0 bytes)'
    """

    def __init__(self, reason: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason = reason
        self.path = path


def is_image_name(name: str) -> bool:
    """True for a visible file name with an image extension (any case).

    >>> is_image_name("IMG_1.JPG"), is_image_name(".thumb.jpg"), is_image_name("notes.txt")
    (True, False, False)
    """
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_images(root: Path | str) -> tuple[list[FoundFile], list[tuple[str, str]]]:
    """Every image file under ``root`` sorted by relative path, plus ``(path, reason)`` for what was skipped.

    Follows symlinked folders but visits each real folder once, so symlink loops end; skips hidden names,
    other extensions, broken links and anything that is not a regular file (a FIFO named ``x.jpg`` would
    block a reader forever). Folders that cannot be listed and file names that are not valid UTF-8 (they
    cannot be stored or exported) come back as problems rather than silently vanishing.

    >>> found, problems = scan_images("photos")  # doctest: +SKIP
    """
    base = Path(root)
    if not base.exists():
        raise InputError(f"image folder {str(base)!r} does not exist")
    if not base.is_dir():
        raise InputError(f"image folder {str(base)!r} is not a directory")
    problems: list[tuple[str, str]] = []

    def on_walk_error(exc: OSError) -> None:
        where = _relative(base, Path(exc.filename)) if exc.filename else "."
        problems.append((where, f"cannot list folder: {exc.strerror or exc}"))

    root_stat = base.stat()
    seen_dirs = {(root_stat.st_dev, root_stat.st_ino)}
    found: list[FoundFile] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True, onerror=on_walk_error):
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:  # a link that broke since the listing
                continue
            if (st.st_dev, st.st_ino) not in seen_dirs:
                seen_dirs.add((st.st_dev, st.st_ino))
                keep.append(name)
        dirnames[:] = keep  # os.walk descends only into what is left here
        # relative path once per folder, not per file: relpath per file was half of listing 70k files
        folder, rel_dir = Path(dirpath), _relative(base, Path(dirpath))
        for name in filenames:
            if not is_image_name(name):
                continue
            abs_path = folder / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            try:
                st = os.stat(os.path.join(dirpath, name))  # follows symlinks; a broken one raises
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if not _is_utf8(rel):
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                problems.append((shown, "file name is not valid UTF-8; rename the file"))
                continue
            found.append(FoundFile(rel, abs_path, st.st_size))
    found.sort(key=lambda f: f.path)
    problems.sort()
    return found, problems


def walk_images(root: Path | str) -> Iterator[ImageFile]:
    """Hash and yield every readable image file under ``root`` in sorted path order (see :func:`scan_images`).

    Files that cannot be read are logged and skipped; use :func:`pixlabel.io.ingest.ingest` to get them
    listed as errors instead.

    >>> [f.path for f in walk_images("photos")]  # doctest: +SKIP
    ['a/cat.jpg', 'b/dog.png']
    """
    found, problems = scan_images(root)
    for path, reason in problems:
        log.warning("skipping %s: %s", path, reason)
    for f in found:
        try:
            digest = content_hash(f.abs_path)
        except OSError as exc:
            log.warning("skipping %s: cannot read file: %s", f.path, exc.strerror or exc)
            continue
        yield ImageFile(f.path, f.abs_path, f.size_bytes, digest)


def content_hash(path: Path | str) -> str:
    """BLAKE2b-128 hex digest of the file's bytes, read in 1 MiB chunks.

    >>> len(content_hash(__file__))
    32
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def load_rgb(
    path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode ``path`` fully into an RGB image, upright per EXIF, transparency composited on white.

    The pixel count is checked against ``max_pixels`` from the header before any pixel is decoded.
    ``draft=(w, h)`` lets JPEGs decode at a reduced scale that is still at least ``(w, h)`` (the caller
    resizes). Raises :class:`ImageDecodeError` for every way a file can be unusable.

    >>> load_rgb("photo.jpg", draft=(224, 224)).mode  # doctest: +SKIP
    'RGB'
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if draft is not None and (len(draft) != 2 or min(draft) < 1):
        raise ValueError(f"draft must be a (width, height) of positive integers, got {draft!r}")
    try:
        if os.stat(path).st_size == 0:
            raise ImageDecodeError("empty file (0 bytes)")
    except OSError as exc:
        raise ImageDecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    _allow_pillow_up_to(max_pixels)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageDecodeError(_bomb_reason(w * h, max_pixels))
            if draft is not None and isinstance(im, JpegImagePlugin.JpegImageFile):
                want = draft
                if im.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS:
                    want = (draft[1], draft[0])  # the stored image is sideways to what the caller sees
                im.draft("RGB", want)
            im.load()  # GIF/TIFF/WebP open on their first frame; load() decodes only that one
            upright = _upright(im)
            rgb = _to_rgb(upright)
            return rgb.copy() if rgb is im else rgb  # never hand back the object tied to the open file
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not an image (cannot identify format)") from exc
    except Image.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(match.group(1)) if match else None
        raise ImageDecodeError(_bomb_reason(pixels, max_pixels)) from exc
    except _DECODE_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError) or "truncated" in message.lower():
            raise ImageDecodeError(f"truncated image data ({message})") from exc
        raise ImageDecodeError(f"cannot decode: {message}") from exc


_pillow_limit_lock = threading.Lock()


def _allow_pillow_up_to(max_pixels: int) -> None:
    """Raise Pillow's global limit to at least ``max_pixels`` so our per-call limit is the one that counts.

    Only ever raised, never lowered or restored: restoring would race between decoding threads, and other
    Pillow users in the process keep a guard at the largest limit anyone asked for.
    """
    with _pillow_limit_lock:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _bomb_reason(pixels: int | None, max_pixels: int) -> str:
    size = f"{_sci(pixels)} pixels" if pixels is not None else "the image"
    return f"decompression bomb: {size} exceeds the limit of {_sci(max_pixels)} (raise --max-pixels)"


def _sci(n: int) -> str:
    """``1_200_000_000`` -> ``'1.2e9'``: short enough to read at a glance in errors.csv."""
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _upright(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS as exc:  # broken EXIF should not cost the pixels; show the image as stored
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in _HIGH_DEPTH_MODES:
        return _stretch_to_8bit(im)
    if mode in _ALPHA_MODES or im.has_transparency_data:
        rgba = im.convert("LA").convert("RGBA") if mode == "La" else im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "RGB":
        return im
    if mode in _DIRECT_MODES:
        return im.convert("RGB")
    raise ImageDecodeError(f"unsupported mode {mode}")


def _stretch_to_8bit(im: Image.Image) -> Image.Image:
    """Map the image's own min..max to 0..255: clipping would turn a 0..4000 16-bit scan all white."""
    arr = np.asarray(im, dtype=np.float64)  # (h, w)
    finite = np.isfinite(arr)
    if not finite.any():
        return Image.new("RGB", im.size)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    scaled = np.zeros_like(arr) if hi == lo else (arr - lo) * (255.0 / (hi - lo))
    return Image.fromarray(np.rint(scaled).astype(np.uint8)).convert("RGB")


def _relative(base: Path, path: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
