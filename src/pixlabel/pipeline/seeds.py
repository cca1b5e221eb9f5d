"""Seed (human) labels for a run: from SEED.csv, from an ImageFolder layout, and from earlier human reviews."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pixlabel.errors import InputError
from pixlabel.io.formats.csvfmt import read_labels_csv

UNLABELED_DIRS = frozenset({"unlabeled", "unlabelled", "_unlabeled"})


def seeds_from_csv(path: Path, known_paths: set[str], *, bad_paths: dict[str, str]) -> dict[str, str]:
    """``{image path: class}`` from ``path,label`` rows. A row naming a missing image is an error naming the row;
    one naming an unreadable image is skipped (the image is already in errors.csv)."""
    dataset = read_labels_csv(path)
    seeds: dict[str, str] = {}
    text_rows = {lab.image: n for n, lab in enumerate(dataset.labels, start=2)}
    for lab in dataset.labels:
        if lab.image in bad_paths:
            continue
        if lab.image not in known_paths:
            raise InputError(
                f"{path} row {text_rows[lab.image]}: image {lab.image!r} not found under the image folder "
                "(paths are relative to IMAGES)"
            )
        seeds[lab.image] = lab.label
    return seeds


def seeds_from_folders(paths: list[str]) -> dict[str, str]:
    """ImageFolder layout: ``CLASS/x.png`` is a seed of CLASS; top-level files and ``unlabeled/`` are not."""
    seeds = {}
    for p in paths:
        top, sep, _ = p.partition("/")
        if sep and top not in UNLABELED_DIRS:
            seeds[p] = top
    return seeds


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
