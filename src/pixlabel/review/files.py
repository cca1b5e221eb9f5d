"""Images for the review page: found under the workspace's image root only, never outside it.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> safe_image_path(root, "../etc/passwd")
Traceback (most recent call last):
...
pixlabel.errors.InputError: image path '../etc/passwd': expected a relative path inside the image root
"""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from pixlabel.errors import InputError
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.workspace import Workspace


class OutsideRoot(InputError):
    """The path resolves (through a symlink) to a file outside the image root."""


def image_root(ws: Workspace, override: str | Path | None = None) -> Path:
    """The folder the workspace's image paths are relative to: ``override``, else the ``images`` folder
    ``pixlabel label`` recorded in WS/config.yaml. A relative folder is taken from the current directory,
    as ``pixlabel label`` was given it."""
    if override is not None:
        root, origin = Path(override), "--images"
    else:
        try:
            config = yaml.safe_load(ws.config_yaml.read_text()) or {}
        except (OSError, yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: a date like 0000-00-00
            raise InputError(f"{ws.config_yaml}: cannot read the image folder from it ({exc}); "
                             "pass --images FOLDER") from exc
        if not isinstance(config, dict) or not config.get("images"):
            raise InputError(f"{ws.config_yaml}: no 'images' folder recorded; pass --images FOLDER")
        root, origin = Path(str(config["images"])), str(ws.config_yaml)
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"image folder {root} (from {origin}) does not exist; pass --images FOLDER")
    return root


def safe_image_path(root: Path, rel: str) -> Path:
    """``root / rel`` after refusing absolute paths, ``..``, and symlinks that lead outside ``root``.

    ``root`` must be resolved already (``image_root`` returns it so). Raises ``FileNotFoundError`` for
    anything that is not a readable file there (missing, ``img.png/x``, a name too long for the file system,
    a symlink loop), ``OutsideRoot`` for an escape and ``InputError`` for a malformed path.
    """
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"image path {rel!r}: expected a relative path inside the image root")
    try:
        real = (root / rel).resolve(strict=True)  # follows every symlink, so the check below sees the target
    except (OSError, RuntimeError) as exc:  # ENOTDIR, ENAMETOOLONG, ELOOP (RuntimeError before Python 3.13)
        raise FileNotFoundError(rel) from exc
    if not real.is_relative_to(root):
        raise OutsideRoot(f"image path {rel!r} leads outside the image root")
    if not real.is_file():
        raise FileNotFoundError(rel)
    return real


def thumbnail_bytes(path: Path, *, size: int) -> tuple[bytes, str]:
    """``(bytes, media type)``: the image shrunk to fit ``size`` px, PNG (small, exact) or JPEG (photos)."""
    try:
        im = load_rgb(path, draft=(size, size))
    except ImageDecodeError as exc:
        raise InputError(f"{path.name}: {exc}") from exc
    im.thumbnail((size, size))
    out = io.BytesIO()
    if im.width * im.height <= 64 * 64:
        im.save(out, format="PNG")
        return out.getvalue(), "image/png"
    im.save(out, format="JPEG", quality=85)
    return out.getvalue(), "image/jpeg"
