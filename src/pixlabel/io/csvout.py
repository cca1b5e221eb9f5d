"""labels.csv / errors.csv writers, replacing files atomically so readers never see half a file.

labels.csv rows come from ``pixlabel.io.formats.csvfmt`` (the one labels.csv writer); errors.csv is the
two-column ``path,reason`` contract (``records.ERRORS_CSV_COLUMNS``).

>>> format_errors_csv([("a.png", "empty file")]).splitlines()
['path,reason', 'a.png,empty file']
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pixlabel.io.formats.csvfmt import format_labels_csv, spreadsheet_safe
from pixlabel.records import ERRORS_CSV_COLUMNS

__all__ = ["format_errors_csv", "format_labels_csv", "spreadsheet_safe", "write_atomically", "write_errors_csv"]


def format_errors_csv(errors: Iterable[tuple[str, str]]) -> str:
    """errors.csv text; a file name or reason a spreadsheet would run as a formula is escaped with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ERRORS_CSV_COLUMNS)
    writer.writerows([spreadsheet_safe(path), spreadsheet_safe(reason)] for path, reason in errors)
    return out.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step (temp file in the same folder, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_errors_csv(errors: Iterable[tuple[str, str]], path: Path | str) -> None:
    """Write the ``errors.csv`` contract: a ``path,reason`` header, then one row per unreadable file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, format_errors_csv(errors))
