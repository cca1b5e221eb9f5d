"""Seed (human) labels for a run: from SEED.csv, from an ImageFolder layout, and from earlier human reviews.

Everything here runs on a directory listing (names and sizes), before any image is hashed or decoded, so a
bad seed file on a 70k-image folder fails in seconds rather than after embedding.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pixlabel.errors import InputError
from pixlabel.io.formats.csvfmt import parse_labels_csv
from pixlabel.io.images import FoundFile, content_hash, is_image_name

UNLABELED_DIRS = frozenset({"unlabeled", "unlabelled", "_unlabeled"})
MAX_LISTED = 5  # rows named in one error message; the rest are counted


@dataclass(frozen=True)
class SeedRow:
    """One seed label and where the user wrote it: the spreadsheet row (header = row 1) or 0 for a folder."""

    row: int
    path: str
    label: str

    def where(self) -> str:
        return f"row {self.row} ({self.path!r})" if self.row else repr(self.path)


def read_seed_rows(path: Path) -> list[SeedRow]:
    """The labeled rows of a ``path,label`` CSV, validated cell by cell (errors name the row), each path once.

    A path listed twice with different classes is an error naming both rows; listed twice with the same
    class it counts once.

    >>> [(r.row, r.path, r.label) for r in read_seed_rows(Path("seeds.csv"))]  # doctest: +SKIP
    [(2, 'a.png', 'cat'), (4, 'b.png', 'dog')]
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read labels CSV: {exc}") from exc
    dataset = parse_labels_csv(text, origin=str(path))  # raises on a bad header or cell, naming the row
    numbers = _labeled_row_numbers(text)
    if len(numbers) != len(dataset.labels):  # both skip the same rows; a mismatch is a bug here, not bad input
        raise RuntimeError(f"{path}: {len(numbers)} labeled rows but {len(dataset.labels)} labels parsed")
    first: dict[str, SeedRow] = {}
    for number, lab in zip(numbers, dataset.labels, strict=True):
        seen = first.get(lab.image)
        if seen is None:
            first[lab.image] = SeedRow(number, lab.image, lab.label)
        elif seen.label != lab.label:
            raise InputError(f"{path} rows {seen.row} and {number}: both label {lab.image!r}, as {seen.label!r} "
                             f"and {lab.label!r}; keep the right one")
    return list(first.values())


def _labeled_row_numbers(text: str) -> list[int]:
    """Spreadsheet numbers of the rows ``parse_labels_csv`` turns into labels (non-blank, non-empty label)."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in next(rows, [])]
    at = header.index("label")
    return [n for n, cells in enumerate(rows, start=2)
            if any(c.strip() for c in cells) and len(cells) > at and cells[at].strip()]


class FolderFiles:
    """``path in files`` for image files under ``root``, answered with one ``stat`` per asked path instead of a
    listing of the folder (a seed file names a few dozen of 70k files). Same rules as the folder scan: no hidden
    path parts, an image extension, a regular file (symlinks followed).

    >>> "cat/1.jpg" in FolderFiles("photos")  # doctest: +SKIP
    True
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._seen: dict[str, FoundFile | None] = {}

    def get(self, rel: str) -> FoundFile | None:
        if rel not in self._seen:
            self._seen[rel] = self._look(rel)
        return self._seen[rel]

    def _look(self, rel: str) -> FoundFile | None:
        parts = rel.split("/")
        if any(not part or part.startswith(".") for part in parts) or not is_image_name(parts[-1]):
            return None
        try:
            st = os.stat(os.path.join(self.root, rel))
        except OSError:
            return None
        return FoundFile(rel, self.root / rel, st.st_size) if stat.S_ISREG(st.st_mode) else None

    def __contains__(self, rel: object) -> bool:
        return isinstance(rel, str) and self.get(rel) is not None


def check_seed_paths(rows: list[SeedRow], known_paths: Container[str], *, origin: str, root: str = "") -> None:
    """Every seed row must name a file in the listing; the error names the first rows and counts the rest."""
    missing = [r for r in rows if r.path not in known_paths]
    if not missing:
        return
    first = missing[0]
    more = f"; {len(missing) - 1} more row(s) name missing images too" if len(missing) > 1 else ""
    hint = "paths are relative to IMAGES"
    top = Path(root).name
    if first.path.startswith("/") or first.path.split("/")[0] in ("..", "."):
        hint = "paths are relative to IMAGES"
    elif top and first.path.startswith(f"{top}/") and first.path[len(top) + 1:] in known_paths:
        hint = f"paths are relative to IMAGES: drop the leading {top + '/'!r}"
    raise InputError(f"{origin} row {first.row}: image {first.path!r} not found under the image folder "
                     f"({hint}){more}")


def seeds_from_csv(path: Path, known_paths: set[str], *, bad_paths: Mapping[str, str]) -> dict[str, str]:
    """``{image path: class}`` from ``path,label`` rows. A row naming a missing image is an error naming the row;
    one naming an unreadable image is skipped (the image is already in errors.csv)."""
    rows = read_seed_rows(path)
    check_seed_paths(rows, set(known_paths) | set(bad_paths), origin=str(path))
    return {r.path: r.label for r in rows if r.path not in bad_paths}


def seeds_from_folders(paths: Iterable[str]) -> dict[str, str]:
    """ImageFolder layout: ``CLASS/x.png`` is a seed of CLASS; top-level files and ``unlabeled/`` are not."""
    seeds = {}
    for p in paths:
        top, sep, _ = p.partition("/")
        if sep and top not in UNLABELED_DIRS:
            seeds[p] = top
    return seeds


def check_identical_seeds(rows: list[SeedRow], files: Mapping[str, FoundFile], *, origin: str) -> None:
    """Two seed rows naming byte-identical files with different classes are an error naming both rows.

    Only seeds that share a file size with another seed are hashed: a handful of files, not the folder.
    """
    by_size: dict[int, list[SeedRow]] = defaultdict(list)
    for r in rows:
        if r.path in files:
            by_size[files[r.path].size_bytes].append(r)
    for same_size in by_size.values():
        if len(same_size) < 2 or len({r.label for r in same_size}) < 2:
            continue
        by_hash: dict[str, SeedRow] = {}
        for r in same_size:
            try:
                digest = content_hash(files[r.path].abs_path)
            except OSError:  # unreadable: it goes to errors.csv at ingest
                continue
            other = by_hash.setdefault(digest, r)
            if other.label != r.label:
                raise InputError(f"{origin} rows {other.row} and {r.row}: {other.path!r} and {r.path!r} are the same "
                                 f"file (byte-identical) but labeled {other.label!r} and {r.label!r}; one image "
                                 "cannot be both, fix or remove one row")


def check_seeds(seeds: dict[str, str], *, origin: str, declared: list[str] | None = None,
                zero_shot: bool = False) -> list[str]:
    """The sorted class list (seeded classes plus ``declared`` ones). Refuses fewer than two classes, and a
    declared class without seeds unless zero-shot labels can cover it."""
    counts = Counter(seeds.values())
    declared = declared or []
    unknown = sorted(set(counts) - set(declared)) if declared else []
    if unknown:
        raise InputError(f"{origin}: seed labels use classes not in --classes: {', '.join(unknown)}")
    unseeded = sorted(set(declared) - set(counts))
    if unseeded and not zero_shot:
        raise InputError(f"{origin}: no seed labels for class(es) {', '.join(unseeded)}; label a few images of "
                         "each, or pass --zero-shot to label them from their names")
    if zero_shot and len(set(counts) | set(declared)) >= 2:
        return sorted(set(counts) | set(declared))
    if len(counts) < 2:
        got = ", ".join(f"{c} ({n})" for c, n in counts.items()) or "none"
        raise InputError(f"{origin}: need seed labels for at least two classes, got {got}")
    return sorted(counts)


def drop_unreadable_seeds(seeds: dict[str, str], readable: set[str], classes: list[str], *, origin: str,
                          zero_shot: bool = False) -> tuple[dict[str, str], list[str]]:
    """Seeds whose image turned out unreadable (listed in errors.csv) are dropped, with a note each; a class
    left with no readable seed is an error (it would otherwise vanish from the run without a word)."""
    lost = {p: c for p, c in seeds.items() if p not in readable}
    if not lost:
        return seeds, []
    kept = {p: c for p, c in seeds.items() if p in readable}
    empty = sorted(set(lost.values()) - set(kept.values()))
    if empty and not zero_shot:
        shown = ", ".join(sorted(p for p, c in lost.items() if c in empty)[:MAX_LISTED])
        raise InputError(f"{origin}: class(es) {', '.join(empty)} have no readable seed image left ({shown} "
                         "could not be read, see errors.csv); label a readable image of each")
    shown = ", ".join(sorted(lost)[:MAX_LISTED]) + (" …" if len(lost) > MAX_LISTED else "")
    return kept, [f"{len(lost)} seed image(s) could not be read and were skipped (see errors.csv): {shown}"]
