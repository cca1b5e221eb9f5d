"""Run the property-based fuzz tests (tests/test_fuzz_*.py) with thousands of examples per property.

    flock /tmp/cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/fuzz.py --examples 5000

CI runs the same properties with 200 derandomized examples each; here Hypothesis draws fresh random inputs.
Writes bench/out/fuzz.json: inputs tried per parser / decoder, the slowest single input, peak RSS, failures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=5000, help="examples per property (CI: 200)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fuzz.json")
    args = ap.parse_args()
    os.environ["PIXLABEL_FUZZ_EXAMPLES"] = str(args.examples)  # read when tests/fuzzing.py is imported
    sys.path.insert(0, str(ROOT / "tests"))
    import pytest

    import fuzzing  # the same module object the test files import: its tallies are what they counted

    t0 = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
                        str(ROOT / "tests" / "test_fuzz_formats.py"), str(ROOT / "tests" / "test_fuzz_images.py")])
    seconds = time.perf_counter() - t0
    out = {
        "examples_per_property": args.examples,
        "inputs_tried": dict(sorted(fuzzing.TRIED.items())),
        "inputs_total": sum(fuzzing.TRIED.values()),
        "slowest_input_s": {k: round(v, 3) for k, v in sorted(fuzzing.SLOWEST.items())},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1),
        "pytest_exit_code": int(code),
        "allowed_exceptions": ["InputError (parsers)", "ImageDecodeError (decoders)"],
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    sys.exit(int(code))


if __name__ == "__main__":
    main()
