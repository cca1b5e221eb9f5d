"""Stage 1 of the interop check (project venv): write pixlabel's Label Studio, CVAT and FiftyOne outputs for a
small dataset into tests/data/interop/pixlabel/, for the tools' own libraries to read in stage 2
(``check_labelstudio.py``, ``check_fiftyone.py``, each run in a venv that has that library).

    python scripts/interop/make_pixlabel_outputs.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as cocomask

from pixlabel.io.formats.coco import write_coco
from pixlabel.io.formats.cvat import write_cvat
from pixlabel.io.formats.fiftyone import write_fiftyone
from pixlabel.io.formats.labelstudio import write_labelstudio
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "interop" / "pixlabel"


def sample_dataset() -> Dataset:
    model = Provenance(source="model", labeler="detector", model_version="fcos-r2")
    a, b = (60, 80), (40, 50)  # (h, w)
    blob = np.zeros(b, np.uint8)
    blob[25:35, 30:46] = 1
    blob[28:31, 36:40] = 0  # a hole: only a bitmap keeps it
    rle = cocomask.encode(np.asfortranarray(blob))
    rle["counts"] = rle["counts"].decode("ascii")
    labels = [
        Label("street/a.png", "sign", 0.91, model, box=Box(10, 12, 30, 22, image_size=a), attributes={"text": "EXIT"}),
        Label("street/a.png", "car", 0.64, model, status="review", box=Box(40, 30, 78, 58, image_size=a)),
        Label("street/a.png", "street"),
        Label("b.png", "car", mask=Mask(b, polygons=((5.0, 5.0, 30.0, 5.0, 30.0, 20.0, 5.0, 20.0),))),
        Label("b.png", "car", 0.55, model, mask=Mask(b, rle=rle)),
    ]
    return Dataset([ImageInfo("street/a.png", a), ImageInfo("b.png", b)], labels,
                   Ontology(("car", "sign", "street")))


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    images = OUT / "images"
    ds = sample_dataset()
    for info in ds.images:
        assert info.image_size is not None
        (images / info.path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*info.image_size, 3), 127, np.uint8)).save(images / info.path)
    write_labelstudio(ds, OUT / "tasks.json")
    write_cvat(ds, OUT / "annotations.xml")
    write_fiftyone(ds, images, OUT / "fiftyone")
    regions = Dataset(ds.images, [x for x in ds.labels if x.box or x.mask], ds.ontology)
    write_coco(regions, OUT / "coco.json")
    # FiftyOne's file paths are absolute; the check rewrites them against wherever this folder is.
    samples = json.loads((OUT / "fiftyone" / "samples.json").read_text())
    for s in samples["samples"]:
        s["filepath"] = "../images/" + s["pixlabel_path"]
    (OUT / "fiftyone" / "samples.json").write_text(json.dumps(samples, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
