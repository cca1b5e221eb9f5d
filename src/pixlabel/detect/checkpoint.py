"""``WS/detector/checkpoint.pt``: what an interrupted detect run had finished, so the next run resumes.

It holds the finished rounds (their records and the best model so far with its calibration) and the
training stage in progress (weights, optimizer, schedule, step), written atomically after every round and
every minute of training. A run resumes only from a checkpoint of the same work: same fingerprint (detector
spec, seed images and their boxes, unlabeled images, seed); anything else starts fresh. The pipeline removes
the file when a run completes (the trained detector is in ``WS/detector`` by then).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
FILE = "checkpoint.pt"


def fingerprint(parts: Any) -> str:
    """A short hash of anything JSON can hold (the work a checkpoint belongs to)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TrainingCheckpoint:
    """Load (if it fits ``key``) or start the checkpoint at ``path``; ``save()`` writes it atomically."""

    def __init__(self, path: Path | str, key: str) -> None:
        self.path, self.key = Path(path), key
        self.rounds: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None  # round, val_map50, calibration, model (state dict)
        self.stopped = False  # no more rounds: held-out mAP stopped improving
        self.stage: dict[str, Any] | None = None  # name + fit_detector state
        self.resumed = False
        if self.path.is_file():
            try:
                data = torch.load(self.path, map_location="cpu", weights_only=False)
            except Exception as exc:  # a torn or foreign file: start over, say why
                log.warning("%s: unreadable checkpoint (%s); starting fresh", self.path, exc)
                return
            if data.get("key") != key:
                log.info("%s: from different work (images, seeds or detector changed); starting fresh", self.path)
                return
            self.rounds, self.best, self.stopped, self.stage = (data["rounds"], data["best"], data["stopped"],
                                                                data["stage"])
            self.resumed = True
            log.info("%s: resuming after %d finished round(s)%s", self.path, len(self.rounds),
                     f", {self.stage['name']} at step {self.stage['step']}" if self.stage else "")

    def stage_state(self, name: str) -> dict[str, Any] | None:
        return self.stage if self.stage is not None and self.stage["name"] == name else None

    def save_stage(self, name: str, state: dict[str, Any]) -> None:
        self.stage = {"name": name, **state}
        self.save()

    def finish_round(self, record: dict[str, Any], *, best: dict[str, Any] | None, stopped: bool) -> None:
        self.rounds.append(record)
        if best is not None:
            self.best = best
        self.stopped, self.stage = stopped, None
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"key": self.key, "rounds": self.rounds, "best": self.best, "stopped": self.stopped,
                    "stage": self.stage}, tmp)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
