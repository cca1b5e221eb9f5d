"""Stage 2 of the interop check, run with a Python that has ``label-studio-sdk`` (not a pixlabel dependency:
it pins numpy < 2.3 and its own opencv build):

    python -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio-sdk
    /tmp/ls/bin/python scripts/interop/check_labelstudio.py

1. validates pixlabel's tasks (tests/data/interop/pixlabel/tasks.json) against the labeling config written
   beside them with the SDK's ``LabelInterface.validate_prediction``;
2. runs the SDK's own export converter (Label Studio JSON -> COCO) on those tasks reviewed as they are and
   records the boxes it finds, to compare with pixlabel's COCO of the same labels;
3. writes Label Studio tasks made by the SDK's COCO importer (``convert_coco_to_ls``) from pixlabel's COCO file
   to tests/data/interop/labelstudio/, which tests/test_formats_labelstudio.py reads back.
Findings go to bench/out/interop_labelstudio.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import label_studio_sdk
from label_studio_sdk.converter import Converter
from label_studio_sdk.converter.imports.coco import convert_coco_to_ls
from label_studio_sdk.label_interface import LabelInterface

ROOT = Path(__file__).resolve().parents[2]
OURS = ROOT / "tests" / "data" / "interop" / "pixlabel"
FIXTURES = ROOT / "tests" / "data" / "interop" / "labelstudio"


def main() -> None:
    config = (OURS / "tasks.config.xml").read_text()
    tasks = json.loads((OURS / "tasks.json").read_text())
    interface = LabelInterface(config)
    errors = {t["data"]["pixlabel_path"]: interface.validate_prediction(t["predictions"][0], return_errors=True)
              for t in tasks if t.get("predictions")}
    # A reviewer who submits the predictions unchanged: the same regions as an annotation.
    reviewed = [{"id": n + 1, "data": t["data"],
                 "annotations": [{"id": n + 1, "completed_by": 1, "result": t["predictions"][0]["result"],
                                  "was_cancelled": False}]}
                for n, t in enumerate(tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "export.json"
        src.write_text(json.dumps(reviewed))
        Converter(config, project_dir=tmp, download_resources=False).convert(
            str(src), str(Path(tmp) / "coco"), "COCO", is_dir=False)
        sdk_coco = json.loads((Path(tmp) / "coco" / "result.json").read_text())
    ours = json.loads((OURS / "coco.json").read_text())
    ours_boxes = sorted([round(v, 3) for v in a["bbox"]] for a in ours["annotations"])
    sdk_boxes = sorted([round(v, 3) for v in a["bbox"]] for a in sdk_coco["annotations"])

    if FIXTURES.exists():
        shutil.rmtree(FIXTURES)
    FIXTURES.mkdir(parents=True)
    convert_coco_to_ls(str(OURS / "coco.json"), str(FIXTURES / "from_coco.json"),
                       image_root_url="/data/local-files/?d=")
    report = {
        "label_studio_sdk": label_studio_sdk.__version__ if hasattr(label_studio_sdk, "__version__") else "2.x",
        "prediction_errors": errors,
        "predictions_valid": all(not e for e in errors.values()),
        "sdk_coco_boxes": sdk_boxes,
        "pixlabel_coco_boxes": ours_boxes,
        "sdk_coco_matches_pixlabel_coco": sdk_boxes == ours_boxes,
        "fixtures": sorted(str(p.relative_to(ROOT)) for p in FIXTURES.iterdir()),
    }
    out = ROOT / "bench" / "out" / "interop_labelstudio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
