"""Uploads → model-sized images, with what decoding will cost known from the header before any pixel is made.

:func:`probe` opens an upload lazily (Pillow reads only the header), refuses formats outside the usual photo
formats and images over the per-image limit, and returns how many pixels decoding will produce (for a JPEG
after ``draft``, which decodes straight at 1/2, 1/4 or 1/8 scale). :func:`decode_for_model` then decodes with
``load_rgb``'s rules and shrinks to the network's input size at once, so a request holds model-sized images
while it waits for its batch, not the camera's.

Example::

    pixels = probe(data, max_pixels=25_000_000, size=(224, 224))          # cheap; raises before decoding
    image = decode_for_model(data, max_pixels=25_000_000, size=(224, 224), mode="RGB")
"""

from __future__ import annotations

import io
import os
import tempfile

from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from pixlabel.io.images import ImageDecodeError, load_rgb

SERVE_MAX_PIXELS = 25_000_000  # per image: a 6000x4000 photo; far above any classifier's input
SERVE_REQUEST_PIXELS = 100_000_000  # per request, summed over its uploads after JPEG draft scaling
# The formats of pixlabel.io.images.IMAGE_EXTENSIONS. Pillow knows dozens more (EPS would run Ghostscript,
# others are rarely fuzzed); a model server has no reason to parse them.
FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP")  # JPEG includes multi-picture (MPO) files
# What Pillow raises on malformed headers (the same families io.images maps to ImageDecodeError).
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)
Image.init()  # registers every plugin now: Image.open(formats=...) looks names up without doing so


class TooManyPixels(ImageDecodeError):
    """The header declares more pixels than the server decodes (HTTP 413, not 415)."""


def probe(data: bytes, *, max_pixels: int, size: tuple[int, int]) -> int:
    """Pixels decoding ``data`` will produce for a model of input ``size`` ``(h, w)``; raises
    :class:`TooManyPixels` over ``max_pixels`` (from the declared size) and :class:`ImageDecodeError` for
    anything that is not one of :data:`FORMATS`."""
    if not data:
        raise ImageDecodeError("empty upload (0 bytes)")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise TooManyPixels(f"{w}x{h} = {w * h:,} pixels; this server decodes at most {max_pixels:,} "
                                    "per image (--max-pixels)")
            if isinstance(im, JpegImagePlugin.JpegImageFile):
                im.draft("RGB", (size[1], size[0]))  # only sets the scale; nothing is decoded yet
                w, h = im.size
            return int(w * h)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own refusal above 2x its global limit
        raise TooManyPixels(f"{exc}; this server decodes at most {max_pixels:,} pixels per image") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"not an image in a served format ({', '.join(FORMATS)})") from exc
    except _HEADER_ERRORS as exc:
        raise ImageDecodeError(f"cannot read the image header: {exc or type(exc).__name__}") from exc


def decode_for_model(data: bytes, *, max_pixels: int, size: tuple[int, int], mode: str) -> Image.Image:
    """``data`` decoded (EXIF upright, transparency on white, JPEG at a draft scale still >= ``size``) and
    resized to ``size`` ``(h, w)`` in ``mode`` exactly as ``ModelSpec.preprocess`` would, which then finds
    nothing left to do. Raises :class:`ImageDecodeError`."""
    probe(data, max_pixels=max_pixels, size=size)  # the format gate and pixel limit, whoever calls this
    h, w = size
    # load_rgb works on paths; a short-lived temp file keeps one decoder for disk and uploads
    fd, name = tempfile.mkstemp(prefix="pixlabel-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        rgb = load_rgb(name, max_pixels=max_pixels, draft=(w, h))
    finally:
        os.unlink(name)
    return rgb.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
