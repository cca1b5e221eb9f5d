"""Stage 2 of the interop check, run with a Python that has ``label-studio-sdk`` (not a pixlabel dependency:
it pins numpy < 2.3 and its own opencv build):

    python -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio-sdk
    /tmp/ls/bin/python scripts/interop/check_labelstudio.py

1. validates pixlabel's tasks (tests/data/interop/pixlabel/tasks.json) against the labeling config written
   beside them with the SDK's ``LabelInterface.validate_prediction``;
2. runs the SDK's own export converter (Label Studio JSON -> COCO) on those tasks reviewed as they are and
   records the boxes it finds, to compare with pixlabel's COCO of the same labels;
3. writes Label Studio tasks made by the SDK's COCO importer (``convert_coco_to_ls``) from pixlabel's COCO file
   to tests/data/interop/labelstudio/, which tests/test_formats_labelstudio.py reads back;
4. decodes pixlabel's brush (bitmap) regions with the SDK's ``decode_rle`` and compares them with pixlabel's
   COCO masks, and writes a brush annotation encoded by the SDK's ``mask2rle`` (brush_sdk.json, with the mask
   it encodes) for the tests to decode.
Findings go to bench/out/interop_labelstudio.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import label_studio_sdk
import numpy as np
from label_studio_sdk.converter import Converter
from label_studio_sdk.converter.brush import decode_rle, mask2rle
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
    # The SDK's COCO export leaves brush regions out ("Unknown label type"): compare the others.
    ours_boxes = sorted([round(v, 3) for v in a["bbox"]] for a in ours["annotations"]
                        if not isinstance(a["segmentation"], dict))
    sdk_boxes = sorted([round(v, 3) for v in a["bbox"]] for a in sdk_coco["annotations"])

    if FIXTURES.exists():
        shutil.rmtree(FIXTURES)
    FIXTURES.mkdir(parents=True)
    # The SDK's COCO importer does not read RLE segmentations ("not yet supported"): polygons and boxes only.
    polygons_only = {**ours, "annotations": [a for a in ours["annotations"] if not isinstance(a["segmentation"], dict)]}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "coco.json").write_text(json.dumps(polygons_only))
        convert_coco_to_ls(str(Path(tmp) / "coco.json"), str(FIXTURES / "from_coco.json"),
                           image_root_url="/data/local-files/?d=")
    brush = brush_checks(tasks, ours)
    report = {
        **brush,
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


def brush_checks(tasks: list[dict], coco: dict) -> dict:
    """pixlabel's brush regions decoded by the SDK vs pixlabel's COCO RLE of the same masks; and a fixture the
    SDK encodes."""
    ours = []
    for task in tasks:
        for region in task.get("predictions", [{}])[0].get("result", []):
            if region["type"] == "brushlabels":
                h, w = region["original_height"], region["original_width"]
                ours.append(np.reshape(decode_rle(region["value"]["rle"]), (h, w, 4))[:, :, 3] > 0)
    rle_anns = [a for a in coco["annotations"] if isinstance(a["segmentation"], dict)]
    expected = [coco_rle_pixels(a["segmentation"]) for a in rle_anns]
    mask = np.zeros((40, 50), np.uint8)
    mask[5:20, 10:30] = 255
    mask[10:14, 15:20] = 0
    fixture = [{"id": 1, "data": {"image": "/data/local-files/?d=b.png"}, "annotations": [{
        "id": 1, "completed_by": 1, "was_cancelled": False, "result": [{
            "id": "br1", "type": "brushlabels", "from_name": "brush", "to_name": "image", "origin": "manual",
            "original_width": 50, "original_height": 40, "image_rotation": 0,
            "value": {"format": "rle", "rle": [int(v) for v in mask2rle(mask)], "brushlabels": ["car"]}}]}]}]
    (FIXTURES / "brush_sdk.json").write_text(json.dumps(fixture))
    (FIXTURES / "brush_sdk_mask.json").write_text(json.dumps((mask > 0).astype(int).tolist()))
    return {"pixlabel_brush_regions": len(ours),
            "sdk_decodes_pixlabel_brush_as_coco_mask": len(ours) == len(expected) > 0
            and all(np.array_equal(a, b) for a, b in zip(ours, expected, strict=True))}


def coco_rle_pixels(seg: dict) -> np.ndarray:
    """Decode a compressed COCO RLE without pycocotools (LEB128-like, as in its maskApi.c)."""
    h, w = seg["size"]
    counts, s, p = [], seg["counts"].encode("ascii"), 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    return flat.reshape(w, h).T


if __name__ == "__main__":
    main()
