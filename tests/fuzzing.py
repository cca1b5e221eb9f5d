"""Shared by tests/test_fuzz_*.py and bench/fuzz.py: how many examples each property gets, and a tally.

CI runs ``PIXLABEL_FUZZ_EXAMPLES`` (default 200) examples per property; ``bench/fuzz.py`` sets thousands and
reads :data:`TRIED` to report how many inputs each property really saw.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("PIXLABEL_FUZZ_EXAMPLES", "200"))
TRIED: Counter[str] = Counter()  # property name -> inputs tried (every call, shrinking included)
SLOWEST: dict[str, float] = {}  # property name -> longest single example, seconds

# A deadline per example turns a hang into a failure; 5 s leaves room for a loaded CI machine (examples take
# milliseconds). CI runs the same examples every time (derandomize); the bench explores new ones.
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), derandomize=EXAMPLES <= 200,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


@contextmanager
def tried(name: str) -> Iterator[None]:
    """Count one input of property ``name`` and time it."""
    TRIED[name] += 1
    t0 = time.perf_counter()
    try:
        yield
    finally:
        SLOWEST[name] = max(SLOWEST.get(name, 0.0), time.perf_counter() - t0)


def only(allowed: tuple[type[BaseException], ...], fn: Callable[[], object]) -> None:
    """Run ``fn``; the allowed exceptions are the documented outcome for bad input, anything else fails."""
    try:
        fn()
    except allowed:
        pass
