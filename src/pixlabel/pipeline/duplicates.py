"""Exact and near duplicates in a run's pool. Arrays in, groups out; :func:`write_duplicates_csv` is the thin writer.

Exact duplicates share a content hash (ingest computes it): they are one image and get one label. Near
duplicates are different files whose embeddings point the same way (cosine >= ``NEAR_THRESHOLD``): a re-encode, a
resize, a small crop. They are reported, not merged: two near-identical photos may still be two classes.

>>> exact_groups(["a", "b", "a", "c", "b"])
[[0, 2], [1, 4]]
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Cosine (of pool-centred embeddings) at or above which two different files count as near duplicates. Measured by
# bench/near_duplicates.py (docs/results.md) on Fashion-MNIST (10k) and 1,438 openclipart colour files at 96 and
# 224 px: at 0.99, 2 of 1,438 openclipart files (two near-identical toolbar icons) and none of the Fashion-MNIST
# images have a *different* picture (16x16 thumbnails differ) that close, while 0.98
# already gives 2.4% on openclipart. The price is recall: 14-38% of edited copies (JPEG, half size, 4% crop, +10%
# brightness) reach it; re-saved files (same pixels) always do. Uncentred cosines of these non-negative features
# sit near 0.85 for unrelated Fashion-MNIST items; centring spreads them out.
NEAR_THRESHOLD = 0.99
EXACT_LIMIT = 20_000  # rows up to which the candidate search is exact
CANDIDATES = 16  # neighbours per image searched in a 64-d PCA space; cosines are then checked at full width


@dataclass(frozen=True)
class Duplicates:
    """Groups of pool rows, each sorted, groups ordered by their first row."""

    exact: list[list[int]]  # same content hash, >= 2 rows each
    near: list[list[int]]  # different contents within ``threshold`` of each other (with their exact copies)
    threshold: float

    def exact_rows(self) -> int:
        """Images that are an extra copy of another (rows in exact groups beyond the first of each)."""
        return sum(len(g) - 1 for g in self.exact)


def exact_groups(hashes: Sequence[str]) -> list[list[int]]:
    """Rows sharing a content hash, for every hash held by two or more rows."""
    rows: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        rows[h].append(i)
    return sorted((g for g in rows.values() if len(g) > 1), key=lambda g: g[0])


def unique_rows(hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)``: the first row of each distinct hash (M,), and for every row its position in it (N,).

    >>> [a.tolist() for a in unique_rows(["a", "b", "a"])]
    [[0, 1], [0, 1, 0]]
    """
    first: dict[str, int] = {}
    inverse = np.empty(len(hashes), dtype=np.int64)
    for i, h in enumerate(hashes):
        inverse[i] = first.setdefault(h, len(first))
    reps = np.zeros(len(first), dtype=np.int64)
    for i in range(len(hashes) - 1, -1, -1):
        reps[inverse[i]] = i
    return reps, inverse


def _project(unit: np.ndarray, *, dim: int = 64, seed: int = 0, fit_rows: int = 5_000) -> np.ndarray:
    """Top principal components, *not* whitened: whitening would blow up the low-variance directions where two
    copies of a picture differ, and scatter near duplicates apart. Fitted on a seeded sample of ``fit_rows``
    (64 directions of a 1280-d feature are well estimated from 5k rows; 10k rows took 5 s on a busy CPU)."""
    if unit.shape[1] <= dim or len(unit) <= dim:
        return unit
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    sample = unit if len(unit) <= fit_rows else unit[rng.choice(len(unit), fit_rows, replace=False)]
    return PCA(dim, random_state=seed).fit(sample).transform(unit).astype(np.float32)


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """(N, k) nearest rows (Euclidean, in the projected space): exact up to ``EXACT_LIMIT`` rows, then a small
    HNSW graph (M=16): on 70k x 64 it took 3-10 s (quiet / busy CPU) where exact search took ~16 s and an M=32
    graph ~25 s; pairs as close as near duplicates are each other's nearest neighbours, which it finds first."""
    import faiss  # only once images are embedded

    x = np.ascontiguousarray(x, dtype=np.float32)
    index: faiss.Index
    if len(x) <= EXACT_LIMIT:
        index = faiss.IndexFlatL2(x.shape[1])
    else:
        index = faiss.IndexHNSWFlat(x.shape[1], 16)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = max(32, k)
    index.add(x)
    return index.search(x, k)[1].astype(np.int64)


def centered_unit(x: np.ndarray) -> np.ndarray:
    """Rows minus their mean, scaled to length 1: cosine on these is what :data:`NEAR_THRESHOLD` is set on."""
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def near_pairs(embeddings: np.ndarray, *, threshold: float = NEAR_THRESHOLD, seed: int = 0) -> np.ndarray:
    """``(P, 2)`` row pairs ``i < j`` whose cosine similarity (after centring, :func:`centered_unit`) is >=
    ``threshold``.

    Candidates are each row's ``CANDIDATES`` nearest neighbours in a 64-d PCA space (faiss; exact up to 300k
    rows), so 70k embeddings take seconds rather than a full N x N product; the cosine is then computed on the
    full embeddings, so the threshold means the same thing as in the benchmark that set it.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    unit = centered_unit(x)
    neighbours = _neighbours(_project(unit, seed=seed), min(CANDIDATES + 1, n))  # (N, k), self among them
    i = np.repeat(np.arange(n), neighbours.shape[1])
    j = neighbours.reshape(-1)
    keep = (j >= 0) & (i != j)
    i, j = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    code = np.unique(i * n + j)  # 1-D unique is far cheaper than unique rows of an (P, 2) array
    pairs = np.stack([code // n, code % n], axis=1)
    cos = np.empty(len(pairs), dtype=np.float32)
    for s in range(0, len(pairs), 65_536):  # gathered rows in chunks: 1.1M pairs x 1280 floats would be 5.6 GB
        a, b = pairs[s:s + 65_536, 0], pairs[s:s + 65_536, 1]
        cos[s:s + 65_536] = np.einsum("ij,ij->i", unit[a], unit[b])
    return pairs[cos >= threshold]


def find_duplicates(hashes: Sequence[str], embeddings: np.ndarray, *, threshold: float = NEAR_THRESHOLD,
                    seed: int = 0) -> Duplicates:
    """Exact groups by hash; near groups = connected components of :func:`near_pairs` over distinct contents,
    each listed with every exact copy of its members. ``embeddings`` (N, D) in the rows of ``hashes``.

    Components chain (a~b, b~c puts a, b, c together even if a is not near c); at a threshold this strict a
    chain is a series of near-identical edits of one picture.
    """
    reps, inverse = unique_rows(hashes)
    pairs = near_pairs(embeddings[reps], threshold=threshold, seed=seed)
    near: list[list[int]] = []
    if len(pairs):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        m = len(reps)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
        _, component = connected_components(graph, directed=False)
        sizes = np.bincount(component)
        members: dict[int, list[int]] = defaultdict(list)
        for row, u in enumerate(inverse):
            if sizes[component[u]] > 1:
                members[int(component[u])].append(row)
        near = sorted(members.values(), key=lambda g: g[0])
    return Duplicates(exact_groups(hashes), near, threshold)


def seed_conflicts(groups: list[list[int]], seed_class: Mapping[int, int | str]) -> list[list[int]]:
    """Groups whose human seeds disagree: ``seed_class`` maps pool row -> class of the seeded rows.

    >>> seed_conflicts([[0, 3], [1, 2]], {0: "cat", 3: "dog", 1: "cat"})
    [[0, 3]]
    """
    return [g for g in groups if len({seed_class[r] for r in g if r in seed_class}) > 1]


@dataclass(frozen=True)
class ContentSeeds:
    """Seeds per distinct content: what the labelers train on when every file's copies are one image.

    ``labeled``, ``y``, ``checkable`` and ``rows`` are aligned (S,): the content id (position in the unique
    rows), its class, whether it may be held out, and the pool row of one of its human seeds. Contents whose
    seeds disagree are left out: an image labeled both ways cannot teach either class.
    """

    labeled: np.ndarray
    y: np.ndarray
    checkable: np.ndarray
    rows: np.ndarray
    conflicts: list[list[int]]  # pool rows of every file of each content whose seeds disagree


def seeds_by_content(inverse: np.ndarray, seed_rows: np.ndarray, seed_y: np.ndarray,
                     checkable: np.ndarray) -> ContentSeeds:
    """Collapse seeds (M,) onto contents: ``inverse`` (N,) maps pool rows to content ids (:func:`unique_rows`).

    >>> c = seeds_by_content(np.array([0, 1, 0, 2]), np.array([0, 2, 3]), np.array([1, 1, 0]), np.ones(3, bool))
    >>> c.labeled.tolist(), c.y.tolist(), c.rows.tolist()
    ([0, 2], [1, 0], [0, 3])
    """
    classes: dict[int, set[int]] = defaultdict(set)
    first: dict[int, int] = {}
    check: dict[int, bool] = {}
    for r, k, ok in zip(seed_rows.tolist(), seed_y.tolist(), np.asarray(checkable).tolist(), strict=True):
        u = int(inverse[r])
        classes[u].add(k)
        first.setdefault(u, r)
        check[u] = check.get(u, True) and bool(ok)  # a review correction among the copies: never held out
    agreed = sorted(u for u, ks in classes.items() if len(ks) == 1)
    disputed = {u for u, ks in classes.items() if len(ks) > 1}
    conflicts = [np.flatnonzero(inverse == u).tolist() for u in sorted(disputed)]
    return ContentSeeds(
        labeled=np.array(agreed, dtype=np.int64),
        y=np.array([next(iter(classes[u])) for u in agreed], dtype=np.int64),
        checkable=np.array([check[u] for u in agreed], dtype=bool),
        rows=np.array([first[u] for u in agreed], dtype=np.int64),
        conflicts=sorted(conflicts, key=lambda g: g[0]),
    )


def duplicate_notes(dups: Duplicates, conflicts: list[list[int]], paths: Sequence[str],
                    seed_class: Mapping[int, str], *, shown: int = 5) -> list[str]:
    """What a person should hear about duplicates, in words; empty when there are none."""
    notes = []
    if dups.exact:
        notes.append(f"{len(dups.exact)} group(s) of byte-identical files ({dups.exact_rows()} extra copies): each "
                     "group is labeled once and all its copies share the label (duplicates.csv)")
    for g in conflicts[:shown]:
        said = ", ".join(f"{paths[r]} ({seed_class[r]})" for r in g if r in seed_class)
        notes.append(f"human seeds disagree on one image (byte-identical files): {said}; not used as seeds, its "
                     "unlabeled copies go to review")
    if len(conflicts) > shown:
        notes.append(f"{len(conflicts) - shown} more identical-file groups with disagreeing seeds (duplicates.csv)")
    if dups.near:
        near_conflicts = seed_conflicts(dups.near, seed_class)
        extra = (f"; in {len(near_conflicts)} of them human seeds disagree, check them" if near_conflicts else "")
        notes.append(f"{len(dups.near)} group(s) of near-duplicate files (embedding cosine >= {dups.threshold:g}): "
                     f"reported in duplicates.csv, labeled separately{extra}")
    return notes


def write_duplicates_csv(dups: Duplicates, paths: Sequence[str], path: Path) -> None:
    """``group,path,kind``: exact groups numbered first, then near groups; kind is ``exact`` or ``near``."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["group", "path", "kind"])
        number = 0
        for kind, groups in (("exact", dups.exact), ("near", dups.near)):
            for g in groups:
                number += 1
                w.writerows([number, paths[r], kind] for r in g)
