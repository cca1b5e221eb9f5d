"""Detection defaults from the data and the budget: the detector's input size from the images, the minutes
from the effort and the image count, and how those minutes are split between teacher, students and the
final prediction.

>>> detector_size_for([(160, 160)] * 3), detector_size_for([(128, 96), (120, 90)]), detector_size_for([(3000, 4000)])
(160, 64, 512)
>>> round(default_minutes(Effort.BALANCED, 400), 1), round(default_minutes(Effort.BALANCED, 2000), 1)
(7.1, 13.5)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixlabel.budget import Effort

SIZE_CAP = 512  # larger inputs cost more per step than the CPU budget repays; --detector-size overrides
SIZE_FLOOR = 64  # below this the detector's coarse pyramid levels (stride 64, 128) have no pixels to see
log = logging.getLogger(__name__)
MAX_MINUTES = 30.0
ROUNDS = {Effort.FAST: 0, Effort.BALANCED: 1, Effort.THOROUGH: 2}


def detector_size_for(sizes: Sequence[tuple[int, int]], *, cap: int = SIZE_CAP) -> int:
    """The median shorter side of the images ``(h, w)``, capped at ``cap`` and rounded down to a multiple of
    32 (the pyramid's padding): small images are never upsampled, except up to ``SIZE_FLOOR``."""
    if not sizes:
        return SIZE_FLOOR
    short = float(np.median([min(h, w) for h, w in sizes]))
    return int(max(SIZE_FLOOR, min(cap, short) // 32 * 32))


def default_minutes(effort: Effort, n_images: int) -> float:
    """The whole run's budget when none is given. Balanced: 5.5 min + 4 min per 1,000 images (400 images:
    7.1 min, 2,000: 13.5 min), at most 30; fast half of that, thorough 2.5 times. The fixed part pays for the
    teacher, which needs about as many steps however many unlabeled images there are."""
    return min(MAX_MINUTES, 5.5 + 4.0 * n_images / 1000) * effort.scale


@dataclass(frozen=True)
class PredictCost:
    """Seconds per image of one detector pass (measured), for budgeting the passes still to come."""

    seconds_per_image: float
    n_unlabeled: int
    final_passes: int  # test-time passes of the final prediction (flip x scales)

    def final(self) -> float:
        """Final prediction plus storing, exporting and the report (about 5 ms per image and 10 s)."""
        return self.n_unlabeled * (self.seconds_per_image * self.final_passes * 1.15 + 0.005) + 10.0

    def pseudo(self) -> float:
        """One pseudo-labelling pass of a student round."""
        return self.n_unlabeled * self.seconds_per_image * 1.15 + 2.0


def training_seconds(left: float, cost: PredictCost, *, pseudo_passes: int, share: float) -> float:
    """Seconds for the next training stage: ``share`` of what is left after the final prediction and the
    ``pseudo_passes`` still to come. The teacher gets 0.6 when a student follows (the split of the 0.70-mAP
    benchmark run), each student an equal part of the rest. The passes are set aside up to half of what is
    left: a budget too small for them still trains (and the run overruns) rather than training nothing."""
    reserve = cost.final() + pseudo_passes * cost.pseudo()
    if reserve > 0.5 * left:
        log.warning("%.0f s left, but the prediction passes alone need about %.0f s: the run will overrun its "
                    "budget (give more --time-budget, or fewer --tta-scales)", left, reserve)
        reserve = 0.5 * left
    return max(0.0, (left - reserve) * share)
