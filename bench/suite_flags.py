"""How many correct seeds a flag rule would call mislabeled, on the suite's colour sets and digits (all seeds are
correct there, so every flag is a false one): the share of seeds whose out-of-fold prediction is another class
with a calibrated confidence of at least t, for t in 0.5 / 0.7 / 0.8 / 0.9. Sets ``decide.SUSPECT_CONFIDENCE``.

    .venv/bin/python bench/suite_flags.py          # embeddings come from bench/suite.py's cache
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from suite import embed_set, pick_seeds  # noqa: E402
from suite_data import load  # noqa: E402

from pixlabel.labelers.protocol import Pool  # noqa: E402
from pixlabel.pipeline.decide import decide  # noqa: E402

LEVELS = (0.5, 0.7, 0.8, 0.9)


def main() -> None:
    work = Path("/tmp/pixlabel-suite")
    out = []
    for name, size in (("clipart-broad", 224), ("icons", 224), ("clipart-fine", 224), ("digits", 96)):
        s = load(name, work)
        x, thumbs, y, _ = embed_set(s, size, work / "cache")
        for per_class in (5, 10):
            shares: dict[float, list[float]] = {t: [] for t in LEVELS}
            for seed in (0, 1, 2):
                lab = pick_seeds(y, per_class=per_class, seed=seed)
                d = decide(Pool(x, thumbs, seed), lab, y[lab], n_classes=len(s.classes), seed=seed)
                r = d.cv[d.method]
                wrong = r.heldout_probs.argmax(1) != y[lab][r.heldout_idx]
                for t in LEVELS:
                    shares[t].append(float((wrong & (d.heldout_confidence >= t)).sum() / len(lab)))
            row = {"set": name, "per_class": per_class,
                   "correct_seeds_flagged": {str(t): float(np.mean(v)) for t, v in shares.items()}}
            out.append(row)
            print(json.dumps(row), flush=True)
    Path("bench/out/suite_flags.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
