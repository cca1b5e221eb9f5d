"""Shared by the format adapters: warnings, number text, safe paths; finding, sizing, copying images."""

from __future__ import annotations

import math
import re
import shutil
import struct
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.images import scan_images
from pixlabel.progress import progress
from pixlabel.records import Dataset, ImageInfo

_EXIF_ORIENTATION = 0x0112
_ROTATED_90 = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height when displayed
# Besides OSError, what Pillow's header parsers raise on malformed files.
_HEADER_ERRORS = (Image.DecompressionBombError, ValueError, SyntaxError, EOFError, IndexError, KeyError,
                  TypeError, struct.error)


class FormatWarning(UserWarning):
    """An annotation was repaired or skipped (box clipped to the image, zero-area box dropped, …)."""


def warn(message: str) -> None:
    warnings.warn(message, FormatWarning, stacklevel=3)


def fmt_num(value: float, *, decimals: int = 6) -> str:
    """Short text for a coordinate: integers without a dot, anything else rounded to ``decimals``.

    >>> fmt_num(12.0), fmt_num(3.14159265), fmt_num(0.5, decimals=8)
    ('12', '3.141593', '0.5')
    """
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def text_number(text: str | None) -> float | None:
    """``text`` as a finite float, or None when it is not one (the caller words the error)."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def json_number(value: object) -> float | None:
    """A JSON value as a finite float, or None; ``true``/``false`` are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def safe_relpath(path: str, *, origin: str) -> str:
    """``path`` normalised to a POSIX path inside the image root.

    Absolute paths and ``..`` are refused: an annotation file must not make us read or write outside the
    folders the user named.

    >>> safe_relpath("./cat/1.jpg", origin="labels.csv row 2")
    'cat/1.jpg'
    """
    if not path.strip():
        raise InputError(f"{origin}: the image path is empty")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or PureWindowsPath(path).drive:
        raise InputError(f"{origin}: image path {path!r} must be relative to the image root, without '..'")
    return pure.as_posix()


class PathResolver:
    """Finds which known image path a tool's reference names (a URL's path, a name in an XML file).

    In order: the same path; the longest trailing part of the reference that is a known path (a document root
    above the image root); a known file of the same name when only one has it (an upload's ``<8 hex>-`` prefix,
    as Label Studio renames uploads, removed). None when nothing fits or the name is ambiguous: never a guess.

    >>> PathResolver(["pets/cat.jpg", "pets/dog.jpg"]).resolve("data/upload/3/1a2b3c4d-cat.jpg")
    'pets/cat.jpg'
    """

    _UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")

    def __init__(self, known: Iterable[str]) -> None:
        self._known = set(known)
        self._by_name: dict[str, list[str]] = {}
        for path in sorted(self._known):
            self._by_name.setdefault(PurePosixPath(path).name, []).append(path)

    def resolve(self, reference: str) -> str | None:
        parts = PurePosixPath(reference).parts
        for start in range(len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in self._known:
                return candidate
        if not parts:
            return None
        matches = {m for name in {parts[-1], self._UPLOAD_PREFIX.sub("", parts[-1])}
                   for m in self._by_name.get(name, [])}
        return matches.pop() if len(matches) == 1 else None


def list_images(root: Path) -> list[str]:
    """Sorted relative POSIX paths of the image files under ``root`` (hidden files and folders skipped).

    Uses :func:`pixlabel.io.images.scan_images`, the walker behind ``walk_images`` without its content
    hashing: converting needs names, not hashes. What it could not list comes back as warnings.
    """
    found, problems = scan_images(root)
    for path, reason in problems:
        warn(f"{root / path}: skipped, {reason}")
    return [f.path for f in found]


def read_image_size(path: Path) -> tuple[int, int]:
    """``(h, w)`` as the image is displayed, from the file header only (no pixels are decoded).

    Width and height are swapped for EXIF orientations 5–8 because viewers, annotation tools and
    Ultralytics all show such photos rotated, and normalised YOLO coordinates refer to that view.
    Raises OSError when the file is not a readable image.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            rotated = im.getexif().get(_EXIF_ORIENTATION) in _ROTATED_90
    except _HEADER_ERRORS as exc:
        raise OSError(str(exc) or type(exc).__name__) from exc
    return (w, h) if rotated else (h, w)


def all_images(dataset: Dataset) -> list[ImageInfo]:
    """``dataset.images`` plus an entry for every labelled path the image list forgot, in first-seen order."""
    known = {info.path for info in dataset.images}
    extra: dict[str, ImageInfo] = {}
    for lab in dataset.labels:
        if lab.image not in known and lab.image not in extra:
            geometry = lab.box or lab.mask
            extra[lab.image] = ImageInfo(lab.image, geometry.image_size if geometry else None)
    return [*dataset.images, *extra.values()]


def with_image_sizes(dataset: Dataset, images_root: Path) -> Dataset:
    """A copy of ``dataset`` where every image has a size: from its labels' boxes/masks, else the file header.

    A missing file is an error; a file whose size cannot be read is dropped with its labels and a warning.
    """
    sizes: dict[str, tuple[int, int]] = {}
    for lab in dataset.labels:
        geometry = lab.box or lab.mask
        if geometry is not None:
            sizes.setdefault(lab.image, geometry.image_size)
    images: list[ImageInfo] = []
    for info in all_images(dataset):
        size = info.image_size or sizes.get(info.path)
        if size is None:
            file = images_root / safe_relpath(info.path, origin="dataset")
            if not file.is_file():
                raise InputError(f"{file}: image not found; is SRC the folder the label paths start from?")
            try:
                size = read_image_size(file)
            except OSError as exc:
                warn(f"{images_root / info.path}: skipped, cannot read the image size: {exc}")
                continue
        images.append(ImageInfo(info.path, size, info.image_id, info.attributes))
    kept = {info.path for info in images}
    return Dataset(images, [lab for lab in dataset.labels if lab.image in kept], dataset.ontology)


def copy_images(paths: Iterable[str], src_root: Path, dst_root: Path) -> None:
    """Copy each relative path from ``src_root`` to the same relative path under ``dst_root``."""
    copy_files({p: p for p in paths}, src_root, dst_root)


def copy_files(plan: Mapping[str, str], src_root: Path, dst_root: Path) -> None:
    """Copy ``src_root/source`` to ``dst_root/target`` for each ``target: source``.

    Every source must exist, else nothing is copied and the error lists the missing ones.
    """
    pairs = [(safe_relpath(t, origin="output"), safe_relpath(s, origin="dataset")) for t, s in plan.items()]
    missing = list(dict.fromkeys(s for _, s in pairs if not (src_root / s).is_file()))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"{len(missing)} image(s) named in the labels are not under {src_root}: {shown}; "
            "is SRC the folder the label paths are relative to?"
        )
    for target, source in progress(pairs, desc="copy images", unit="img"):
        dst = dst_root / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / source, dst)
