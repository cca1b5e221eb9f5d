"""What the CLI prints while it works: progress and logging, decided in one place.

* Progress: a tqdm bar on a terminal; anywhere else (CI logs, pipes, files) one line per stage when it ends,
  e.g. ``embed tf_efficientnet_lite0: 5000 img in 41.2s (121 img/s)``, because a bar's ``\\r`` frames turn a
  CI log into thousands of lines. Stages shorter than a second print nothing either way. ``--quiet`` hides both.
* Logging: pixlabel's INFO messages read as plain lines and warnings as ``warning: …``; other libraries
  (alembic, matplotlib, faiss, …) speak only at WARNING. ``-v`` brings their INFO back and pixlabel's DEBUG.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_enabled = True
_HANDLER = "pixlabel-cli"
MIN_SECONDS = 1.0  # a stage quicker than this shows no bar and prints no line


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def _interactive(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class StageLine:
    """The non-terminal stand-in for a tqdm bar: counts ``update``s and prints one line on ``close``.

    >>> import io
    >>> out = io.StringIO()
    >>> with StageLine(desc="copy", total=3, unit="img", stream=out, min_seconds=0) as line:
    ...     line.update(3)
    >>> out.getvalue().startswith("copy: 3 img in ")
    True
    """

    def __init__(self, *, desc: str, total: int | None, unit: str, stream: TextIO,
                 min_seconds: float = MIN_SECONDS, enabled: bool = True) -> None:
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self._stream, self._min, self._enabled = stream, min_seconds, enabled
        self._start = time.perf_counter()
        self._postfix: dict[str, Any] = {}
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values: Any) -> None:
        self._postfix = values

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        elapsed = time.perf_counter() - self._start
        if not self._enabled or elapsed < self._min:
            return
        done = f"{self.n}/{self.total}" if self.total is not None and self.n != self.total else f"{self.n}"
        rate = f" ({self.n / elapsed:.3g} {self.unit}/s)" if self.n and elapsed > 0 else ""
        extra = "".join(f", {k}={v}" for k, v in self._postfix.items())
        print(f"{self.desc}: {done} {self.unit} in {elapsed:.1f}s{rate}{extra}", file=self._stream, flush=True)

    def __enter__(self) -> StageLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(*, desc: str, total: int | None = None, unit: str = "it") -> tqdm | StageLine:
    """A progress handle with ``update``, ``set_postfix`` and ``close`` (and ``with`` support)."""
    if _interactive(sys.stderr):
        return tqdm(desc=desc, total=total, unit=unit, disable=not _enabled, delay=MIN_SECONDS, file=sys.stderr,
                    leave=False, dynamic_ncols=True)
    return StageLine(desc=desc, total=total, unit=unit, stream=sys.stderr, min_seconds=MIN_SECONDS, enabled=_enabled)


def progress(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``items``, with a bar (terminal) or a closing line (anything else) for the stage."""
    if _interactive(sys.stderr):
        yield from tqdm(items, desc=desc, total=total, unit=unit, disable=not _enabled, delay=MIN_SECONDS,
                        file=sys.stderr, leave=False, dynamic_ncols=True)
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with StageLine(desc=desc, total=total, unit=unit, stream=sys.stderr, min_seconds=MIN_SECONDS,
                   enabled=_enabled) as line:
        for item in items:
            yield item
            line.update(1)


class _ToolFormatter(logging.Formatter):
    """pixlabel's own INFO as the bare message; warnings and errors prefixed like the CLI's own messages."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            origin = "" if record.name.startswith("pixlabel") else f"{record.name}: "
            return f"warning: {origin}{message}"
        return message


def configure_logging(*, quiet: bool, verbose: bool) -> None:
    """Levels and format for a CLI run (see the module docstring)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER)
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_ToolFormatter("%(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # a second run in one process
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("pixlabel").setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its import chatter is not for users
    set_enabled(not quiet)
