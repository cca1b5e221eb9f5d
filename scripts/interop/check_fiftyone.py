"""Stage 2 of the interop check, run with a Python that has ``fiftyone`` (not a pixlabel dependency: a large tree
that needs a MongoDB, which its wheel downloads at first use and cannot here):

    python -m venv /tmp/fo && /tmp/fo/bin/pip install fiftyone
    /tmp/fo/bin/python scripts/interop/check_fiftyone.py

Everything below runs FiftyOne's own readers and writers without a database:
1. pixlabel's FiftyOne folder (tests/data/interop/pixlabel/fiftyone) through the importer that
   ``fo.Dataset.from_dir(..., dataset_type=fo.types.FiftyOneDataset)`` picks for it, sample by sample;
2. pixlabel's CVAT XML through FiftyOne's CVAT image importer;
3. FiftyOne's CVAT image exporter writes tests/data/interop/cvat/fiftyone_export.xml (boxes, polygons, tags
   and an attribute), which tests/test_formats_cvat.py reads back.
Findings go to bench/out/interop_fiftyone.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import fiftyone as fo
import fiftyone.utils.cvat as fouc
import fiftyone.utils.data.importers as foui

ROOT = Path(__file__).resolve().parents[2]
OURS = ROOT / "tests" / "data" / "interop" / "pixlabel"


def read_our_dataset() -> list[dict]:
    importer = foui.FiftyOneDatasetImporter(str(OURS / "fiftyone"))
    importer = foui._handle_legacy_formats(importer)  # what Dataset.from_dir does before importing
    out = []
    with importer:
        kind = type(importer).__name__
        for sample in importer:
            det = sample["detections"].detections if sample.has_field("detections") and sample["detections"] else []
            seg = sample["segmentations"].polylines if sample.has_field("segmentations") and sample["segmentations"] \
                else []
            cls = sample["classification"] if sample.has_field("classification") else None
            out.append({
                "importer": kind,
                "filepath_exists": Path(sample.filepath).is_file(),
                "pixlabel_path": sample["pixlabel_path"],
                "tags": list(sample.tags),
                "classification": None if cls is None else [cls.label, cls.confidence, cls["source"]],
                "detections": [[d.label, [round(v, 4) for v in d.bounding_box], d.confidence, d["source"],
                                d["model_version"], d["text"] if d.has_field("text") else None] for d in det],
                "segmentations": [[p.label, len(p.points[0]), p["source"]] for p in seg],
            })
    return out


def read_our_cvat() -> list[dict]:
    importer = fouc.CVATImageDatasetImporter(data_path=str(OURS / "images"),
                                             labels_path=str(OURS / "annotations.xml"))
    out = []
    with importer:
        for path, _, labels in importer:
            entry = {"image": Path(path).name}
            for field, value in (labels or {}).items():
                if isinstance(value, fo.Detections):
                    entry[field] = [[d.label, [round(v, 4) for v in d.bounding_box]] for d in value.detections]
                elif isinstance(value, fo.Polylines):
                    entry[field] = [[p.label, len(p.points[0])] for p in value.polylines]
                elif isinstance(value, fo.Classifications):
                    entry[field] = [c.label for c in value.classifications]
            out.append(entry)
    return out


def write_fiftyone_cvat() -> Path:
    out = ROOT / "tests" / "data" / "interop" / "cvat" / "fiftyone_export.xml"
    exporter = fouc.CVATImageDatasetExporter(labels_path=str(out), export_media=False)
    samples = [
        ("street/a.png", (80, 60), {
            "detections": fo.Detections(detections=[
                fo.Detection(label="sign", bounding_box=[0.125, 0.2, 0.25, 1 / 6], text="EXIT"),
                fo.Detection(label="car", bounding_box=[0.5, 0.5, 0.475, 0.4667]),
            ]),
            "classifications": fo.Classifications(classifications=[fo.Classification(label="street")]),
        }),
        ("b.png", (50, 40), {
            "polylines": fo.Polylines(polylines=[fo.Polyline(
                label="car", points=[[(0.1, 0.125), (0.6, 0.125), (0.6, 0.5), (0.1, 0.5)]], closed=True,
                filled=True)]),
        }),
    ]
    with exporter:
        exporter._name = "pixlabel-interop"  # log_collection would take it from a stored dataset
        exporter._task_labels = None
        for rel, (w, h), labels in samples:
            exporter.export_sample(str(OURS / "images" / rel), labels,
                                   metadata=fo.ImageMetadata(width=w, height=h))
    return out


def main() -> None:
    report = {
        "fiftyone": fo.__version__,
        "pixlabel_fiftyone_dir": read_our_dataset(),
        "pixlabel_cvat_read_by_fiftyone": read_our_cvat(),
        "fiftyone_cvat_fixture": str(write_fiftyone_cvat().relative_to(ROOT)),
    }
    out = ROOT / "bench" / "out" / "interop_fiftyone.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
