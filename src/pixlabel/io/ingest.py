"""Scan a folder, hash and test-decode every image, and list the unreadable ones for ``errors.csv``.

>>> result = ingest("photos", workers=2)  # doctest: +SKIP
>>> write_errors_csv(result.errors, Path("ws/errors.csv"))  # doctest: +SKIP
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pixlabel.io.csvout import write_errors_csv  # noqa: F401  (re-exported: callers write errors.csv)
from pixlabel.io.images import (
    DEFAULT_MAX_PIXELS,
    FoundFile,
    ImageDecodeError,
    ImageFile,
    content_hash,
    load_rgb,
    scan_images,
)
from pixlabel.progress import progress


@dataclass
class IngestResult:
    """Readable images and ``(path, reason)`` for everything else, both sorted by path."""

    images: list[ImageFile] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def ingest(
    root: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True, workers: int = 2,
    listing: tuple[list[FoundFile], list[tuple[str, str]]] | None = None,
) -> IngestResult:
    """Walk ``root``, hash every image and (with ``decode``) decode it fully in ``workers`` threads.

    ``listing``: the :func:`scan_images` result of ``root`` when the caller already has it (``pixlabel label``
    checks its seed file against the listing first), so the folder is not walked twice.

    One bad file never stops the run: it becomes an ``errors`` entry. Raises ``InputError`` only when
    ``root`` itself is missing or not a folder.

    >>> r = ingest("photos")  # doctest: +SKIP
    >>> len(r.images), r.errors[:1]  # doctest: +SKIP
    (12, [('b/broken.jpg', 'truncated image data (image file is truncated)')])
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    found, problems = listing if listing is not None else scan_images(root)
    result = IngestResult(errors=list(problems))

    def check(f: FoundFile) -> ImageFile | tuple[str, str]:
        return _check_one(f, max_pixels=max_pixels, decode=decode)

    # Threads suffice: hashlib and Pillow's decoders release the GIL.
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixlabel-ingest")
    try:
        outcomes = pool.map(check, found)  # yields in input order, so results stay sorted by path
        for outcome in progress(outcomes, desc="ingest", total=len(found), unit="img"):
            if isinstance(outcome, ImageFile):
                result.images.append(outcome)
            else:
                result.errors.append(outcome)
    finally:
        # On Ctrl-C do not decode the rest of the folder before exiting.
        pool.shutdown(wait=True, cancel_futures=True)
    result.errors.sort()
    return result


def _check_one(f: FoundFile, *, max_pixels: int, decode: bool) -> ImageFile | tuple[str, str]:
    try:
        digest = content_hash(f.abs_path)
        if decode:
            load_rgb(f.abs_path, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        return (f.path, exc.reason)
    except OSError as exc:  # vanished or unreadable between the scan and now (content_hash)
        return (f.path, f"cannot read file: {exc.strerror or exc}")
    # Nothing broader: load_rgb turns every decoder failure into ImageDecodeError (tests/test_fuzz_images.py),
    # so anything else is a bug in pixlabel and must stop the run rather than become an "unreadable" row.
    return ImageFile(f.path, f.abs_path, f.size_bytes, digest)
