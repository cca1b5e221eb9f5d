"""INT8 vs fp32 ONNX speed on tf_efficientnet_lite0 @128 px alone (no SmallCNN training first).

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/export_lite0_speed.py

Same measurement as ``bench/export_onnx.py --big`` (which first trains a SmallCNN for ~10 minutes); run it on
an otherwise idle machine. Writes bench/out/export_lite0_speed.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export_onnx import big_rows  # noqa: E402  (a sibling benchmark script, not a package)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pixlabel-bench-lite0-") as tmp:
        rows = big_rows(Path(tmp))
    by = {r["variant"]: r for r in rows}
    fp32, int8 = by["lite0@128 onnx fp32"], by["lite0@128 onnx int8"]
    result = {"rows": rows,
              "int8_speedup_b1": fp32["latency_ms_b1"] / int8["latency_ms_b1"],
              "int8_speedup_b64": int8["throughput_b64"] / fp32["throughput_b64"]}
    out = Path("bench/out/export_lite0_speed.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"INT8 vs fp32 ONNX: {result['int8_speedup_b1']:.2f}x at batch 1, {result['int8_speedup_b64']:.2f}x at 64")


if __name__ == "__main__":
    main()
