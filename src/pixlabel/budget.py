"""How much work a run may do: an ``Effort`` level and a wall-clock ``Budget`` (shared by every task).

A run is given minutes (``--time-budget``) or an effort (``--effort fast|balanced|thorough``) from which the
task derives minutes; the task then sizes its work (training steps, rounds) to what is left of the budget.

>>> b = Budget(10.0, started=0.0)
>>> b.deadline, b.seconds
(600.0, 600.0)
>>> b.time_left(now=150.0), b.describe(now=150.0)
(450.0, '7:30 left of 10:00')
>>> Effort("fast").scale
0.5
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from pixlabel.errors import InputError


class Effort(StrEnum):
    """How hard to try when no time budget is given: a multiplier on the task's default minutes."""

    FAST = "fast"
    BALANCED = "balanced"
    THOROUGH = "thorough"

    @property
    def scale(self) -> float:
        return {Effort.FAST: 0.5, Effort.BALANCED: 1.0, Effort.THOROUGH: 2.5}[self]

    @classmethod
    def parse(cls, value: str | Effort) -> Effort:
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"effort {value!r}: expected one of {', '.join(e.value for e in cls)}") from None


def _clock() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Budget:
    """``minutes`` of wall time from ``started`` (``time.monotonic()`` seconds)."""

    minutes: float
    started: float = field(default_factory=_clock)

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise InputError(f"time budget must be > 0 minutes, got {self.minutes}")

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def deadline(self) -> float:
        """When the budget runs out, on the ``time.monotonic()`` clock."""
        return self.started + self.seconds

    def elapsed(self, *, now: float | None = None) -> float:
        return (_clock() if now is None else now) - self.started

    def time_left(self, *, now: float | None = None) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.deadline - (_clock() if now is None else now))

    def describe(self, *, now: float | None = None) -> str:
        """``'m:ss left of m:ss'`` for progress lines."""
        return f"{_mmss(self.time_left(now=now))} left of {_mmss(self.seconds)}"


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"
