"""Boundary checks shared by the trust modules: turn array-likes into validated numpy arrays.

Every check raises ``ValueError`` naming the argument, the expected shape/range and what arrived, so a
caller passing the wrong array learns which one from the message alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Rows of ``probs`` must sum to 1 within this; float32 softmax outputs drift by ~1e-6 per row.
_ROW_SUM_TOL = 1e-3


def as_scores(values: ArrayLike, *, name: str, lo: float = 0.0, hi: float = 1.0) -> NDArray[np.float64]:
    """A finite 1-D float array with every value in ``[lo, hi]``.

    >>> as_scores([0.2, 0.9], name="confidence").tolist()
    [0.2, 0.9]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of shape (N,), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(arr)))} NaN/inf")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name}: expected values in [{lo}, {hi}], got range [{arr.min()}, {arr.max()}]")
    return arr


def as_bools(values: ArrayLike, *, name: str, n: int) -> NDArray[np.bool_]:
    """A 1-D boolean array of length ``n``; accepts bools or 0/1 numbers.

    >>> as_bools([1, 0, True], name="correct", n=3).tolist()
    [True, False, True]
    """
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected a 1-D array of length {n}, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name}: expected booleans or 0/1, got values {np.unique(arr)[:5].tolist()}")
        arr = arr.astype(bool)
    return arr


def as_matrix(values: ArrayLike, *, name: str, n: int | None = None) -> NDArray[np.float64]:
    """A finite 2-D float array ``(N, C)`` with at least one column; ``n`` fixes the row count.

    >>> as_matrix([[1.0, 2.0]], name="embeddings").shape
    (1, 2)
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a 2-D array of shape (N, C) with C >= 1, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(arr)))} NaN/inf")
    return arr


def as_probs(values: ArrayLike, *, name: str = "probs", n: int | None = None) -> NDArray[np.float64]:
    """An ``(N, K)`` matrix of probabilities whose rows sum to 1.

    >>> as_probs([[0.25, 0.75]]).shape
    (1, 2)
    """
    arr = as_matrix(values, name=name, n=n)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name}: expected probabilities in [0, 1], got range [{arr.min()}, {arr.max()}]")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOL)
    if bad.size:
        raise ValueError(
            f"{name}: expected rows summing to 1, row {int(bad[0])} sums to {sums[bad[0]]:.6g} "
            f"({bad.size} such rows); pass softmax outputs, not logits"
        )
    return arr


def as_labels(values: ArrayLike, *, name: str = "labels", n: int | None = None, k: int) -> NDArray[np.int64]:
    """A 1-D array of integer class indices in ``[0, k)``.

    >>> as_labels([0, 2, 1], k=3).tolist()
    [0, 2, 1]
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class indices, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per row of the probabilities), got {len(arr)}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.number) and np.all(np.mod(arr, 1) == 0)):
            raise ValueError(f"{name}: expected integer class indices, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= k):
        raise ValueError(f"{name}: expected class indices in [0, {k}), got range [{out.min()}, {out.max()}]")
    return out


def as_index_set(values: Iterable[int], *, name: str, n: int) -> NDArray[np.int64]:
    """Sorted unique indices into ``range(n)``; duplicates are an error because they hint at a caller bug.

    >>> as_index_set([3, 1], name="labeled_idx", n=5).tolist()
    [1, 3]
    """
    arr = values if isinstance(values, np.ndarray) else np.asarray(list(values))
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-D sequence of integer indices, got {arr.dtype} {arr.shape}")
    out = arr.astype(np.int64)
    if out.min() < 0 or out.max() >= n:
        raise ValueError(f"{name}: expected indices in [0, {n}), got range [{out.min()}, {out.max()}]")
    uniq = np.unique(out)
    if uniq.size != out.size:
        raise ValueError(f"{name}: expected unique indices, got {out.size - uniq.size} duplicate(s)")
    return uniq


def as_count(value: int, *, name: str) -> int:
    """A non-negative Python int (numpy ints accepted, bools and floats refused).

    >>> as_count(np.int64(3), name="budget")
    3
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value}")
    return int(value)
