"""Seed labels the decision flags as likely wrong, with the class the held-out model suggests: ``suspects.csv``.

Arrays in (:func:`suspects`), one thin writer (:func:`write_suspects_csv`). The flag rule itself lives in the
decision (``Decision.flagged_seeds``); this only says what to show for each flagged seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pixlabel.pipeline.decide import Decision


@dataclass(frozen=True)
class Suspect:
    seed: int  # position in the seed arrays
    given: int  # class index the human gave
    suggested: int  # argmax of the held-out probabilities
    score: float  # 1 - held-out P(given class): higher is more suspicious


def _heldout_probs(d: Decision, seed: int) -> np.ndarray | None:
    """(K,) out-of-fold probabilities of seed ``seed``: the chosen labeler's CV first, then any other's."""
    order = [d.method, *(n for n in d.cv if n != d.method)]
    for name in order:
        r = d.cv.get(name)
        if r is None or not r.has_heldout:
            continue
        hits = np.flatnonzero(r.heldout_idx == seed)
        if hits.size:
            return np.asarray(r.heldout_probs[hits[0]], dtype=np.float64)
    return None


def suspects(d: Decision, y: np.ndarray, labeled_idx: np.ndarray) -> list[Suspect]:
    """One :class:`Suspect` per flagged seed, most suspicious first as the decision ranked them. ``y`` and
    ``labeled_idx`` are the seed arrays the decision was made on; a flagged seed that no labeler held out falls
    back to the final probabilities of its row ``labeled_idx[seed]`` of ``d.probs``."""
    out = []
    for s in np.asarray(d.flagged_seeds, dtype=np.int64).tolist():
        probs = _heldout_probs(d, s)
        if probs is None:
            probs = np.asarray(d.probs[labeled_idx[s]], dtype=np.float64)
        given = int(y[s])
        out.append(Suspect(s, given, int(probs.argmax()), float(1.0 - probs[given])))
    return out


def write_suspects_csv(rows: list[Suspect], seed_paths: list[str], classes: list[str], path: Path) -> None:
    """``path,given,suggested,score`` (header only when nothing is flagged, so the file is always there);
    ``seed_paths`` (S,) names the file of each seed position."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "given", "suggested", "score"])
        w.writerows([seed_paths[r.seed], classes[r.given], classes[r.suggested], f"{r.score:.4f}"] for r in rows)
