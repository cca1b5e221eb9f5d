"""What ``LabelStore`` methods return.

>>> PutResult(inserted=2, updated=1).written
3
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SyncResult:
    """Counts from ``sync_images``: ``changed`` = same path, new content; ``missing`` = known, not scanned."""

    new: int = 0
    moved: int = 0
    unchanged: int = 0
    changed: int = 0
    missing: int = 0


@dataclass(frozen=True)
class PutResult:
    """Counts from ``put_labels``; ``kept_human`` = model/synthetic labels skipped to keep a human label."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    kept_human: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True)
class HistoryEntry:
    """One audited change. ``old``/``new`` are label snapshots (``None`` = absent) or, for an image,
    ``{"path": ...}`` / ``{"content_hash": ...}``."""

    at: _dt.datetime
    actor: str
    reason: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    label_id: int | None


@dataclass(frozen=True)
class RunInfo:
    id: int
    command: str
    config: dict[str, Any]
    status: str
    started_at: _dt.datetime
    finished_at: _dt.datetime | None
    stats: dict[str, Any] | None
