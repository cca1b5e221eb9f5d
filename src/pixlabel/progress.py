"""One place that decides whether progress bars show (``--quiet`` hides them)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_enabled = True


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def progress(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """A tqdm bar on stderr that appears only after a second and only when enabled and interactive-ish."""
    disable = not _enabled
    yield from tqdm(items, desc=desc, total=total, unit=unit, disable=disable, delay=1.0, file=sys.stderr,
                    leave=False, dynamic_ncols=True)


def bar(*, desc: str, total: int | None = None, unit: str = "it") -> tqdm:
    return tqdm(desc=desc, total=total, unit=unit, disable=not _enabled, delay=1.0, file=sys.stderr,
                leave=False, dynamic_ncols=True)


def configure_logging(*, quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its import chatter is not for users
    set_enabled(not quiet)
